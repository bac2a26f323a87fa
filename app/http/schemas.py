"""Helpers for the request and response models of the HTTP APIs.

- `PlainDecimal`: every Decimal the operator API answers is a plain decimal string
  (`"0.00000000"`, `"1000"`, `"0.00000070"`), never exponent notation (`"0E-8"`, `"1E+3"`),
  as on API v2. One serializer, used by every model that carries money.
- `AdminInput`, `ClientInput`: the bases of every operator and customer request body
  (`StrictInput`); an unknown field is refused (422) instead of being silently dropped, so
  a misspelt field never looks applied.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

from app.money import plain

PlainDecimal = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdminInput(StrictInput):
    """An operator's request body (/admin/v1)."""


class ClientInput(StrictInput):
    """A customer's request body (/client/v1)."""


def example(**values: Any) -> ConfigDict:
    """A model config with one OpenAPI example, readable from ORM rows."""
    return ConfigDict(json_schema_extra={"examples": [values]}, from_attributes=True)
