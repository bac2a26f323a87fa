"""A user's personal data as the operator API shows it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ErasedOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 7,
                    "orders_scrubbed": 12,
                    "erased_at": "2026-01-01T00:00:00Z",
                    "purge_after": "2027-01-01T00:00:00Z",
                }
            ]
        }
    )
    user_id: int
    orders_scrubbed: int
    erased_at: datetime
    purge_after: datetime


class DeletionRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    requested_at: datetime
    deadline: datetime
    completed_at: datetime | None
    overdue: bool = False


class DeletionCompletedOut(BaseModel):
    request: DeletionRequestOut
    erased: ErasedOut
