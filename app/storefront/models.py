"""What the operator shows on the storefront, set at run time: the panel's name, its logo
and the three legal texts. One row (id 1); a NULL column means the setting's default
(PANEL_NAME, PANEL_LOGO, TERMS_FILE, PRIVACY_FILE, TERMS_OF_USE_FILE), so removing a value
here brings the setting back. The database keeps the limits the service checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, LargeBinary, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

ROW = 1
NAME_MAX = 100
TEXT_MAX = 50_000  # characters of one legal text
LOGO_MAX_BYTES = 200 * 1024
LOGO_TYPES = ("image/png", "image/svg+xml", "image/jpeg", "image/webp")
# The legal texts: column → the setting naming the file that is the default.
LEGAL_TEXTS = {
    "terms": "terms_file",
    "privacy_policy": "privacy_file",
    "terms_of_use": "terms_of_use_file",
}


def _types_sql() -> str:
    # The constants above, never input (sql_literal refuses the '/' and '+' of a MIME type).
    return ", ".join(f"'{t}'" for t in LOGO_TYPES)


class Storefront(Base):
    __tablename__ = "storefront"
    __table_args__ = (
        CheckConstraint(f"id = {ROW}", name="single_row"),
        CheckConstraint("(logo IS NULL) = (logo_type IS NULL)", name="logo_with_type"),
        CheckConstraint(f"logo_type IN ({_types_sql()})", name="logo_type"),
        CheckConstraint(f"octet_length(logo) <= {LOGO_MAX_BYTES}", name="logo_size"),
        CheckConstraint("btrim(name) <> ''", name="name_not_blank"),
        *(
            CheckConstraint(f"char_length({column}) <= {TEXT_MAX}", name=f"{column}_length")
            for column in LEGAL_TEXTS
        ),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(String(NAME_MAX))
    # Loaded only when served: a page asks for `logo_type` alone.
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(String(20))
    terms: Mapped[str | None] = mapped_column(Text)
    privacy_policy: Mapped[str | None] = mapped_column(Text)
    terms_of_use: Mapped[str | None] = mapped_column(Text)
    # Analytics and chat, off while NULL (app/storefront/analytics.py).
    metrica_id: Mapped[str | None] = mapped_column(String(20))
    ga_id: Mapped[str | None] = mapped_column(String(20))
    chaport_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
