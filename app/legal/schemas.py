"""What the operator API takes and answers about legal texts and acceptances."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.http.schemas import AdminInput, example
from app.legal.models import TEXT_MAX


class PublishIn(AdminInput):
    model_config = example(language="ru", text="1. Общие положения\n\n…")
    language: Literal["en", "ru"]
    text: str = Field(min_length=1, max_length=TEXT_MAX, description="plain text")


class AcceptanceOut(BaseModel):
    document: str
    version_id: int
    action: Literal["registration", "order", "deposit"]
    at: datetime
    ip: str | None
    reference: str | None = Field(description="the deposit's invoice id")
