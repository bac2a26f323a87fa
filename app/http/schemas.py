"""Helpers for the request and response models of the HTTP APIs."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict


def example(**values: Any) -> ConfigDict:
    """A model config with one OpenAPI example, readable from ORM rows."""
    return ConfigDict(json_schema_extra={"examples": [values]}, from_attributes=True)
