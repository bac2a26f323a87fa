"""The operator's announcements (in English and Russian) and how far each customer has
read them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class News(Base):
    __tablename__ = "news"
    __table_args__ = (Index("ix_news_published_at", "published_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    title_en: Mapped[str] = mapped_column(String(200))
    body_en: Mapped[str] = mapped_column(Text)
    # Empty: Russian readers see the English text.
    title_ru: Mapped[str] = mapped_column(String(200), default="", server_default="")
    body_ru: Mapped[str] = mapped_column(Text, default="", server_default="")
    author: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=text("now()")
    )


class NewsRead(Base):
    """The newest announcement a customer has seen: the ones after it are unread."""

    __tablename__ = "news_reads"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seen_id: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
