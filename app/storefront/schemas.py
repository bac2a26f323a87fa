"""The storefront's settings as the operator API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.http.schemas import AdminInput
from app.storefront.models import NAME_MAX, TEXT_MAX

Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=NAME_MAX, pattern=r"^[^\x00-\x1f\x7f]*$"
    ),
]
AnalyticsId = Annotated[str, StringConstraints(max_length=40)]
LegalText = Annotated[str, StringConstraints(max_length=TEXT_MAX, pattern=r"^[^\x00]*$")]
TEXT_HELP = "plain text (blank lines separate paragraphs); null or empty: the file of "


class StorefrontIn(AdminInput):
    """Every field is required: null says "the setting's", so a field left out is refused
    rather than silently reset."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Boost Panel",
                    "terms": "1. Orders\n\nEvery order is final once it starts.",
                    "privacy_policy": None,
                    "terms_of_use": None,
                }
            ]
        },
    )
    name: Name | None = Field(description="the panel's name on every page; null: PANEL_NAME")
    terms: LegalText | None = Field(description=TEXT_HELP + "TERMS_FILE")
    privacy_policy: LegalText | None = Field(description=TEXT_HELP + "PRIVACY_FILE")
    terms_of_use: LegalText | None = Field(description=TEXT_HELP + "TERMS_OF_USE_FILE")
    # Optional: left out, they stay as they are; null or empty switches the service off.
    metrica_id: AnalyticsId | None = Field(
        default=None, description="Yandex.Metrica counter id (digits); null: off"
    )
    ga_id: AnalyticsId | None = Field(
        default=None, description="Google Analytics measurement id (G-XXXX); null: off"
    )
    chaport_id: AnalyticsId | None = Field(
        default=None, description="Chaport app id (24 hexadecimal characters); null: off"
    )


class LogoOut(BaseModel):
    content_type: str
    size: int = Field(description="bytes")
    sha256: str


class StorefrontOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Boost Panel",
                    "shown_name": "Boost Panel",
                    "logo": {"content_type": "image/png", "size": 5120, "sha256": "9f86d0…"},
                    "terms": "1. Orders\n\nEvery order is final once it starts.",
                    "privacy_policy": None,
                    "terms_of_use": None,
                    "updated_at": "2026-01-01T00:00:00Z",
                }
            ]
        }
    )
    name: str | None = Field(description="set at run time; null: PANEL_NAME")
    shown_name: str = Field(description="the name the pages show")
    logo: LogoOut | None = Field(description="set at run time; null: PANEL_LOGO (if set)")
    terms: str | None = Field(description="set at run time; null: TERMS_FILE (if set)")
    privacy_policy: str | None = Field(description="null: PRIVACY_FILE (if set)")
    terms_of_use: str | None = Field(description="null: TERMS_OF_USE_FILE (if set)")
    metrica_id: str | None = None
    ga_id: str | None = None
    chaport_id: str | None = None
    updated_at: datetime | None
