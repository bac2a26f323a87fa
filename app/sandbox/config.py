"""The sandbox provider's configuration: its API keys with their balances, its catalog
and how each service behaves (complete, end Partial, cancel, refuse `add` with a given
error, answer slowly, time out, answer HTTP 500 or garbage), and how fast orders progress.
`default_sandbox_config` is the demo's catalog; `load_sandbox_config` reads a JSON file
(`smm-panel sandbox --config`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

ADD_BEHAVIOURS = ("reject", "slow", "timeout", "http500", "malformed")
FINAL_BEHAVIOURS = ("complete", "partial", "cancel")


@dataclass
class SandboxService:
    id: int
    name: str
    type: str = "Default"
    category: str = "Sandbox"
    rate: Decimal = Decimal("0.50")
    min: int = 10
    max: int = 100_000
    refill: bool = True
    cancel: bool = True
    dripfeed: bool = False
    behaviour: str = "complete"
    partial_percent: int = 50  # share delivered when behaviour is "partial"
    error: str = "Incorrect service ID"  # answer to add when behaviour is "reject"
    delay_seconds: float = 0.0  # "slow": wait before answering add
    timeout_seconds: float = 3600.0  # "timeout": how long add hangs


@dataclass
class SandboxConfig:
    keys: dict[str, Decimal] = field(default_factory=lambda: {"sandbox-key": Decimal(1000)})
    services: list[SandboxService] = field(default_factory=list)
    seconds_to_start: float = 5.0
    seconds_to_complete: float = 30.0
    refill_seconds: float = 5.0
    currency: str = "USD"
    # How `services` answers: "normal", "empty" (an empty list) or "error" ({"error": …}).
    catalog_answer: str = "normal"
    # Speaks the optional extensions (SPEC §4: capabilities, request ids); False: a
    # standard panel that knows nothing of them.
    extensions: bool = True
    # The id of the first order it creates (then one more each). Its orders live in
    # memory: a sandbox restarted for a panel that kept its database starts past the ids
    # it gave before, as a real provider never gives one id twice.
    first_order_id: int = 1


# The demo catalog: the ids match the demo services of the panel (app/demo.py).
DEMO_SERVICES = (
    SandboxService(
        1,
        "Instagram Followers",
        rate=Decimal("0.45"),
        min=50,
        max=10000,
        category="Instagram",
        dripfeed=True,
    ),
    SandboxService(
        2,
        "Instagram Likes",
        rate=Decimal("0.15"),
        min=20,
        max=50000,
        category="Instagram",
        refill=False,
    ),
    SandboxService(
        3,
        "YouTube Views",
        rate=Decimal("0.60"),
        min=100,
        max=1_000_000,
        category="YouTube",
        cancel=False,
    ),
    SandboxService(
        4,
        "YouTube Channel Package",
        type="Package",
        rate=Decimal("2.50"),
        min=1,
        max=1,
        category="YouTube",
        refill=False,
        cancel=False,
    ),
    SandboxService(
        5,
        "Instagram Custom Comments",
        type="Custom Comments",
        rate=Decimal("10"),
        min=1,
        max=1000,
        category="Instagram",
    ),
    SandboxService(
        6,
        "Instagram Comments Package",
        type="Custom Comments Package",
        rate=Decimal("5"),
        min=1,
        max=1,
        category="Instagram",
    ),
    SandboxService(
        7,
        "Instagram Mentions with Hashtags",
        type="Mentions with Hashtags",
        rate=Decimal("2"),
        min=100,
        max=10000,
        category="Instagram",
    ),
    SandboxService(
        8,
        "Instagram Mentions Custom List",
        type="Mentions Custom List",
        rate=Decimal("3"),
        min=1,
        max=1000,
        category="Instagram",
    ),
    SandboxService(
        9,
        "Instagram Mentions Hashtag",
        type="Mentions Hashtag",
        rate=Decimal("2"),
        min=100,
        max=10000,
        category="Instagram",
    ),
    SandboxService(
        10,
        "Instagram Mentions User Followers",
        type="Mentions User Followers",
        rate=Decimal("2"),
        min=100,
        max=10000,
        category="Instagram",
    ),
    SandboxService(
        11,
        "Instagram Mentions Media Likers",
        type="Mentions Media Likers",
        rate=Decimal("2"),
        min=100,
        max=10000,
        category="Instagram",
    ),
    SandboxService(
        12,
        "Instagram Comment Likes",
        type="Comment Likes",
        rate=Decimal("1"),
        min=10,
        max=10000,
        category="Instagram",
    ),
    SandboxService(
        13,
        "Twitter Poll Votes",
        type="Poll",
        rate=Decimal("1"),
        min=10,
        max=10000,
        category="Twitter",
    ),
    SandboxService(
        14,
        "Telegram Invites from Groups",
        type="Invites from Groups",
        rate=Decimal("4"),
        min=10,
        max=10000,
        category="Telegram",
    ),
    SandboxService(
        15,
        "Instagram Auto Likes",
        type="Subscriptions",
        rate=Decimal("0.20"),
        min=50,
        max=10000,
        category="Instagram",
    ),
    SandboxService(
        16,
        "Website Traffic",
        type="Web Traffic",
        rate=Decimal("0.10"),
        min=100,
        max=1_000_000,
        category="Traffic",
        dripfeed=True,
    ),
)


def default_sandbox_config() -> SandboxConfig:
    """The demo's sandbox: one funded key and the demo catalog (copies: a service's
    behaviour may be changed at run time)."""
    return SandboxConfig(
        keys={"sandbox-key": Decimal(100_000)},
        services=[replace(service) for service in DEMO_SERVICES],
    )


def load_sandbox_config(path: str | None) -> SandboxConfig:
    if not path:
        return default_sandbox_config()
    raw = json.loads(Path(path).read_text())
    services = [
        SandboxService(**{**s, "rate": Decimal(str(s.get("rate", "0.50")))})
        for s in raw.pop("services", [])
    ]
    keys = {k: Decimal(str(v)) for k, v in raw.pop("keys", {"sandbox-key": 1000}).items()}
    return SandboxConfig(keys=keys, services=services, **raw)
