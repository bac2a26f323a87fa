"""The authentication rule restated in SQL for the single-statement hot paths; twin of
`app.accounts.service.authenticate` (tests/test_sql_twins_api.py)."""

from __future__ import annotations

from app.accounts.models import USER_ACTIVE
from app.db import sql_literal

# Twin of `app.accounts.service.authenticate`: the key is known and not revoked, its user
# active. `$1` is the key's hash. Every hot statement starts from it.
WHO_FROM = f"""api_keys k JOIN users u ON u.id = k.user_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.status = {sql_literal(USER_ACTIVE)}"""
