"""The console's legal texts: the versions of the Terms of Service, the Privacy Policy and
the Terms of Use in each language, and the form that publishes a new one. The same function
and audit entry as /admin/v1/legal/{document}/versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.console.render import CONSOLE, N_, Failure, Permit, Who, page, posted, redirect
from app.errors import DomainError
from app.http.problems import Problem
from app.legal import service as legal
from app.legal.models import DOCUMENTS

router = APIRouter()
Reading = Annotated[Who, Depends(Permit("settings:read"))]
Writing = Annotated[Who, Depends(Permit("settings:write"))]
Refusals = (DomainError, Problem, ValueError)
TITLES = {
    "terms": N_("Terms of Service"),
    "privacy": N_("Privacy Policy"),
    "terms-of-use": N_("Terms of Use"),
}


async def legal_page(
    who: Who, failure: Failure | None = None, done: bool = False, form: dict[str, str] | None = None
) -> Response:
    async with who.services.db.session() as session:
        documents = [(d, TITLES[d], await legal.versions(session, d)) for d in DOCUMENTS]
    return page(
        who,
        "legal.html",
        failure.status if failure else 200,
        documents=documents,
        document_options=[(d, who._(TITLES[d])) for d in DOCUMENTS],
        form=form or {},
        error=failure.message if failure else "",
        done=who._("Published.") if done else "",
    )


@router.get("/legal")
async def legal_list(who: Reading, done: str = "") -> Response:
    return await legal_page(who, done=done == "published")


@router.post("/legal")
async def publish(who: Writing) -> Response:
    fields = await posted(who)
    given = {name: fields.get(name, "") for name in ("document", "language", "text")}
    try:
        async with who.acting() as (tx, audit):
            await legal.publish_audited(
                tx, audit, given["document"], given["language"], given["text"]
            )
    except Refusals as exc:
        return await legal_page(who, who.error(exc), form=given)
    return redirect(who, f"{CONSOLE}/legal?done=published")
