"""The legal documents' versions and the customers' acceptances of them.

A version is immutable once published: its text and publication time never change, so an
acceptance names exactly the words the customer accepted. The version in force for a
document and language is the one published last. An acceptance is kept as long as the
money records (no cascade: a user row is never deleted while its ledger stands).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, sql_list, utcnow

# The documents, by the name the admin API uses; the storefront's page of each.
DOCUMENTS = ("terms", "privacy", "terms-of-use")
LANGUAGES = ("en", "ru")
TEXT_MAX = 50_000
ACTION_REGISTRATION = "registration"
ACTION_ORDER = "order"
ACTION_DEPOSIT = "deposit"
ACTIONS = (ACTION_REGISTRATION, ACTION_ORDER, ACTION_DEPOSIT)


def _documents_sql() -> str:
    # The constants above, never input (sql_literal refuses the hyphen of terms-of-use).
    return ", ".join(f"'{d}'" for d in DOCUMENTS)


class LegalVersion(Base):
    __tablename__ = "legal_versions"
    __table_args__ = (
        CheckConstraint(f"document IN ({_documents_sql()})", name="document"),
        CheckConstraint(f"language IN ({sql_list(LANGUAGES)})", name="language"),
        CheckConstraint(f"char_length(text) BETWEEN 1 AND {TEXT_MAX}", name="text_length"),
        Index("ix_legal_versions_document_language_id", "document", "language", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2))
    text: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=sql_text("now()")
    )
    published_by: Mapped[str] = mapped_column(String(200))


class LegalAcceptance(Base):
    """One customer's acceptance of one version, by one action.

    Registration and deposits keep a row per action; orders keep one row per user and
    version (the first order placed under it), so the hot path writes nothing per order
    once a version is accepted: the version in force at any order is the latest one whose
    acceptance precedes it.
    """

    __tablename__ = "legal_acceptances"
    __table_args__ = (
        CheckConstraint(f"action IN ({sql_list(ACTIONS)})", name="action"),
        Index("ix_legal_acceptances_user_id_id", "user_id", "id"),
        Index(
            "uq_legal_acceptances_order_once",
            "user_id",
            "version_id",
            unique=True,
            postgresql_where=sql_text(f"action = '{ACTION_ORDER}'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("legal_versions.id"))
    document: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    # What the action refers to: the deposit's invoice id (None for others).
    reference: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=sql_text("now()")
    )
