"""Announcements as the operator API takes and shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.http.schemas import AdminInput


class NewsIn(AdminInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title_en": "New Telegram services",
                    "body_en": "Views and reactions for channels are on sale.",
                    "title_ru": "Новые услуги для Telegram",
                    "body_ru": "В продаже просмотры и реакции для каналов.",
                }
            ]
        }
    )
    title_en: str = Field(min_length=1, max_length=200)
    body_en: str = Field(min_length=1, max_length=5000)
    title_ru: str = Field(default="", max_length=200)
    body_ru: str = Field(default="", max_length=5000)


class NewsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title_en: str
    body_en: str
    title_ru: str
    body_ru: str
    author: str
    published_at: datetime
    updated_at: datetime
