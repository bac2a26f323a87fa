"""Staff members of the tests: made through the staff domain (the command line has its
own tests), each with an API token of /admin/v1 and its bearer header."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.context import AppContext
from app.staff import service as staff


@dataclass(frozen=True)
class Staff:
    id: int
    email: str
    role: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_staff(
    ctx: AppContext, role: str, email: str | None = None, password: str | None = None
) -> Staff:
    address = email or f"{role}-{uuid.uuid4().hex[:6]}@staff.example"
    async with ctx.db.transaction() as session:
        member = await staff.create_member(session, email=address, role=role, password=password)
        issued = await staff.issue_token(session, member.id, "tests")
    return Staff(member.id, member.email, role, issued.token)
