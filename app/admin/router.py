"""The operator API under /admin/v1."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.admin.auth import require_admin

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])
