"""Every operator mutation, enumerated from the published routes, writes an audit entry."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, text

from app.alerts import service as alerts
from app.audit.models import AuditEntry
from app.context import AppContext
from app.mail.service import Mailer
from app.privacy import service as privacy
from app.referrals import service as referrals
from app.sandbox import SandboxConfig, SandboxService
from app.staff import service as staff
from app.tickets import service as tickets
from tests.support.api import Api, order_id_of
from tests.support.env import AUTH
from tests.support.images import png
from tests.support.upstream import sandbox

MUTATING = {"post", "put", "patch", "delete"}


def mutation_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/admin/v1")
        for method in operations
        if method in MUTATING
    }


async def test_every_admin_mutation_route_writes_an_audit_entry(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, api: Api
) -> None:
    covered: set[tuple[str, str]] = set()

    async def audited(
        method: str, template: str, body: Any = None, *, image: bytes | None = None, **ids: Any
    ) -> Any:
        path = "/admin/v1" + template.format(**ids)
        async with ctx.db.session() as session:
            before = await session.scalar(select(func.count(AuditEntry.id)))
        if image is not None:
            headers = {**AUTH, "content-type": "image/png"}
            response = await client.request(method, path, headers=headers, content=image)
        else:
            response = await client.request(method, path, headers=AUTH, json=body)
        assert 200 <= response.status_code < 300, (method, path, response.text)
        async with ctx.db.session() as session:
            after = await session.scalar(select(func.count(AuditEntry.id)))
            last = await session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
        assert after == (before or 0) + 1, (method, path)
        # The admin token acted: no staff member behind it.
        assert last is not None and last.actor == "admin token" and last.action
        assert last.staff_id is None
        covered.add((method, "/admin/v1" + template))
        return response.json() if response.content else None

    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=3600,
        seconds_to_complete=3600,
    )
    async with sandbox(config) as (url, _):
        provider = {"name": "P", "url": f"{url}/api/v2", "api_key": "sandbox-key"}
        pid = (await audited("POST", "/providers", provider))["id"]
        spare = (await audited("POST", "/providers", {**provider, "name": "Spare"}))["id"]
        await audited("PATCH", "/providers/{provider_id}", {"name": "P2"}, provider_id=pid)
        await audited("POST", "/providers/{provider_id}/import", {}, provider_id=pid)
        await audited("DELETE", "/providers/{provider_id}", provider_id=spare)

        cid = (await audited("POST", "/categories", {"name": "C"}))["id"]
        empty = (await audited("POST", "/categories", {"name": "Empty"}))["id"]
        await audited("PATCH", "/categories/{category_id}", {"position": 1}, category_id=cid)
        await audited("DELETE", "/categories/{category_id}", category_id=empty)
        service = {
            "category_id": cid,
            "name": "S",
            "type": "Default",
            "rate": "0.9",
            "min_quantity": 10,
            "max_quantity": 10000,
            "refill": True,
            "refill_days": 30,
            "cancel": True,
            "provider_id": pid,
            "provider_service_id": "1",
            "provider_rate": "0.4",
        }
        sid = (await audited("POST", "/services", service))["id"]
        await audited("PATCH", "/services/{service_id}", {"name": "S2"}, service_id=sid)
        await audited("POST", "/providers/{provider_id}/sync", provider_id=pid)
        backups = {"backups": [{"provider_id": spare, "provider_service_id": "1"}]}
        await audited("PUT", "/services/{service_id}/backups", backups, service_id=sid)
        async with ctx.db.transaction() as session:
            await session.execute(
                text(
                    "UPDATE services SET enabled = false, held = 'type_changed', "
                    "pending_type = 'Default' WHERE id = :id"
                ),
                {"id": sid},
            )
        await audited("POST", "/services/{service_id}/confirm-type", service_id=sid)
        pricing = {"service_ids": [sid], "multiplier": "2"}
        assert (await audited("POST", "/services/pricing", pricing))[0]["rate"] == "0.80000000"
        async with ctx.db.transaction() as session:
            await alerts.raise_alert(session, alerts.SYNC_FAILED, "provider", pid, "failed")
            alert_id = (await alerts.list_alerts(session, limit=1))[0].id
        await audited("POST", "/alerts/{alert_id}/acknowledge", alert_id=alert_id)

        a = await audited("POST", "/users", {"email": "a@x.io", "initial_balance": "50"})
        b = await audited(
            "POST",
            "/users",
            {"email": "b@x.io", "referral_code": a["referral_code"], "initial_balance": "20"},
        )
        uid, bid = a["id"], b["id"]
        await audited("PATCH", "/users/{user_id}", {"name": "A"}, user_id=uid)
        await audited("POST", "/users/{user_id}/keys", user_id=uid)
        key = (await audited("POST", "/users/{user_id}/keys/rotate", user_id=uid))["api_key"]
        await audited("POST", "/users/{user_id}/topup", {"amount": "5"}, user_id=uid)
        await audited(
            "POST", "/users/{user_id}/adjust", {"amount": "-1", "reason": "r"}, user_id=uid
        )
        await audited(
            "PUT",
            "/users/{user_id}/rates/{service_id}",
            {"rate": "0.8"},
            user_id=uid,
            service_id=sid,
        )
        await audited("DELETE", "/users/{user_id}/rates/{service_id}", user_id=uid, service_id=sid)
        await audited("PUT", "/currencies/{code}", {"rate": "1.1"}, code="EUR")
        await audited("DELETE", "/currencies/{code}", code="EUR")

        orders = [
            order_id_of(await api(key, "add", service=sid, link=f"https://x.com/{n}", quantity=100))
            for n in range(5)
        ]
        await audited(
            "POST",
            "/orders/{order_id}/status",
            {"status": "Completed", "remains": 0},
            order_id=orders[0],
        )
        async with ctx.db.transaction() as session:
            await session.execute(
                text(
                    'UPDATE orders SET anomaly = \'[{"kind": "unknown_status"}]\','
                    " anomaly_at = now() WHERE id = :id"
                ),
                {"id": orders[0]},
            )
        await audited("POST", "/orders/{order_id}/anomaly/clear", order_id=orders[0])
        refill = await api(key, "refill", order=orders[0])
        refill_id = int(refill["refill"])
        assert refill == {"refill": str(refill_id)}
        await audited(
            "POST", "/refills/{refill_id}/status", {"status": "Completed"}, refill_id=refill_id
        )
        async with ctx.db.transaction() as session:
            await session.execute(
                text("UPDATE orders SET upstream_state = 'review' WHERE id = ANY(:ids)"),
                {"ids": orders[1:]},
            )
        await audited("POST", "/review/{order_id}/resend", order_id=orders[1])
        await audited(
            "POST", "/review/{order_id}/mark-sent", {"provider_order_id": "77"}, order_id=orders[2]
        )
        await audited("POST", "/review/{order_id}/cancel", order_id=orders[3])
        window = {"created_from": "2000-01-01T00:00:00Z", "created_to": "2100-01-01T00:00:00Z"}
        bulk = {"action": "cancel", "provider_id": pid, **window}
        assert (await audited("POST", "/review/bulk", bulk))["order_ids"] == [orders[4]]

        rewards = (
            await client.get(f"/admin/v1/referral-rewards?referred_id={bid}", headers=AUTH)
        ).json()
        assert [(r["referrer_id"], r["status"]) for r in rewards] == [(uid, "credited")]
        await audited(
            "POST",
            "/referral-rewards/{reward_id}/void",
            {"reason": "x"},
            reward_id=rewards[0]["id"],
        )
        await audited("DELETE", "/users/{user_id}/referrer", user_id=bid)
        await audited(
            "PUT", "/users/{user_id}/referrer", {"referral_code": a["referral_code"]}, user_id=bid
        )
        await audited("POST", "/users/{user_id}/block", {"reason": "x"}, user_id=bid)
        await audited("POST", "/users/{user_id}/unblock", user_id=bid)
        await audited("DELETE", "/users/{user_id}", user_id=bid)
        await audited("POST", "/users/{user_id}/invite", user_id=uid)
        await audited("POST", "/users/{user_id}/sessions/revoke", user_id=uid)
        await audited("POST", "/users/{user_id}/2fa/reset", user_id=uid)
        c = await audited("POST", "/users", {"email": "c@x.io"})
        async with ctx.db.transaction() as session:
            asked = await privacy.request_deletion(session, c["id"], days=30)
        await audited(
            "POST", "/privacy/deletion-requests/{request_id}/complete", request_id=asked.id
        )
        await audited("DELETE", "/services/{service_id}", service_id=sid)

        async with ctx.db.transaction() as session:
            ticket = await tickets.open_ticket(
                session,
                tickets.Notify(Mailer(ctx.db, "console", "panel"), None),
                uid,
                subject="S",
                category="order",
                message="m",
                order_ids=[orders[0]],
            )
        tid = ticket.id
        canned = (await audited("POST", "/canned-answers", {"title": "T", "body": "B"}))["id"]
        await audited(
            "PUT", "/canned-answers/{canned_id}", {"title": "T", "body": "B2"}, canned_id=canned
        )
        await audited("POST", "/tickets/{ticket_id}/assign", {"assignee": "ann"}, ticket_id=tid)
        await audited("POST", "/tickets/{ticket_id}/messages", {"canned_id": canned}, ticket_id=tid)
        await audited("POST", "/tickets/{ticket_id}/notes", {"message": "n"}, ticket_id=tid)
        await audited(
            "POST",
            "/tickets/{ticket_id}/resolve",
            {"order_id": orders[0], "action": "no_action"},
            ticket_id=tid,
        )
        await audited("POST", "/tickets/{ticket_id}/status", {"status": "closed"}, ticket_id=tid)
        await audited("DELETE", "/canned-answers/{canned_id}", canned_id=canned)

        storefront = {"name": "P", "terms": "T", "privacy_policy": None, "terms_of_use": None}
        await audited("PUT", "/storefront", storefront)
        await audited("PUT", "/storefront/logo", image=png())
        await audited("DELETE", "/storefront/logo")

        ann = (await audited("POST", "/staff", {"email": "ann@x.io", "role": "support"}))["id"]
        await audited("PATCH", "/staff/{staff_id}", {"role": "manager"}, staff_id=ann)
        await audited("POST", "/staff/{staff_id}/invite", staff_id=ann)
        await audited("POST", "/staff/{staff_id}/2fa/reset", staff_id=ann)
        issued = await audited("POST", "/staff/{staff_id}/tokens", {"name": "ci"}, staff_id=ann)
        await audited(
            "DELETE", "/staff/{staff_id}/tokens/{token_id}", staff_id=ann, token_id=issued["id"]
        )
        async with ctx.db.transaction() as session:
            opened = await staff.open_session(
                session, ann, timedelta(hours=1), enrolling=False, ip=None, user_agent=None
            )
        await audited(
            "POST",
            "/staff/{staff_id}/sessions/{session_id}/revoke",
            staff_id=ann,
            session_id=opened.row.id,
        )
        await audited("POST", "/staff/{staff_id}/sessions/revoke", staff_id=ann)
        await audited("POST", "/staff/{staff_id}/disable", staff_id=ann)
        await audited("POST", "/staff/{staff_id}/enable", staff_id=ann)
        await audited("PUT", "/staff/settings", {"support_refund_limit": "5"})

        news = {"title_en": "T", "body_en": "B"}
        nid = (await audited("POST", "/news", news))["id"]
        await audited("PUT", "/news/{news_id}", {**news, "title_ru": "Т"}, news_id=nid)
        await audited("DELETE", "/news/{news_id}", news_id=nid)
        terms = {"language": "en", "text": "The terms."}
        await audited("POST", "/legal/{document}/versions", terms, document="terms")

        # Payout requests under the operator's review: one approved, one rejected.
        mode = ctx.settings.affiliate_payouts
        ctx.settings.affiliate_payouts = "review"
        try:
            decisions = (("approve", "p1@x.io", None), ("reject", "p2@x.io", {"reason": "r"}))
            for decision, email, body in decisions:
                referrer = await audited("POST", "/users", {"email": f"r-{email}"})
                referred = {
                    "email": email,
                    "referral_code": referrer["referral_code"],
                    "initial_balance": "20",
                }
                await audited("POST", "/users", referred)
                async with ctx.db.transaction() as session:
                    rules = referrals.PayoutRules.of(ctx.settings)
                    payout = await referrals.request_payout(session, rules, referrer["id"])
                await audited(
                    "POST", f"/referral-payouts/{{payout_id}}/{decision}", body, payout_id=payout.id
                )
        finally:
            ctx.settings.affiliate_payouts = mode

        # A reward held for the operator (the referred account is the referrer's mailbox).
        holder = await audited("POST", "/users", {"email": "h@x.io"})
        second = {"email": "h+2@x.io", "referral_code": holder["referral_code"]}
        await audited("POST", "/users", {**second, "initial_balance": "20"})
        rewards = await client.get(
            "/admin/v1/referral-rewards", headers=AUTH, params={"referrer_id": holder["id"]}
        )
        held = [r["id"] for r in rewards.json() if r["status"] == "held"]
        assert len(held) == 1, rewards.text
        await audited("POST", "/referral-rewards/{reward_id}/release", reward_id=held[0])

        disputed = await audited("POST", "/users", {"email": "d@x.io", "initial_balance": "3"})
        await audited(
            "POST", "/users/{user_id}/chargeback", {"reason": "dispute"}, user_id=disputed["id"]
        )

    assert covered == mutation_routes(app), mutation_routes(app) - covered
