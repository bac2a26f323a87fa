"""The simulated world around the real code: clock, job queue, provider calls, crashes.

Everything here is decided by one seeded generator. A history is a list of steps, each
with its own sub-seed drawn from the run's seed, so that dropping steps (to shrink a
failing history) leaves the choices of the others unchanged.

Determinism: the real code runs as asyncio tasks, but only one of them is ever runnable.
A task runs until it finishes or parks at a provider call (the `Poster` of
app/providers/client.py, see `SimHttp`); the simulation then decides which parked call
to answer, with what, or which worker to abandon (`task.cancel()` at that await point).
Database ids restart with every history (TRUNCATE … RESTART IDENTITY), so a seed always
produces the same rows.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import httpx

import app.db
from sim.provider import FINAL, GARBAGE, URL, SimProvider, form_of, json_response, request

# The current worker task's name, inherited by the tasks it starts (sync batches).
ROOT: contextvars.ContextVar[str] = contextvars.ContextVar("sim_root", default="")


class Clock:
    """The simulated time behind every `utcnow()` of the code."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def install_clock(clock: Callable[[], datetime]) -> Callable[[], None]:
    """Bind `utcnow` to the simulated clock in every module of the code that imported it
    (they hold `from app.db import utcnow`); returns the undo. No source file changes."""
    original = app.db.utcnow
    patched: list[Any] = []
    for name, module in list(sys.modules.items()):
        if not name.startswith(("app.", "workers")) or module is None:
            continue
        if getattr(module, "utcnow", None) is original:
            setattr(module, "utcnow", clock)  # noqa: B010
            patched.append(module)

    def undo() -> None:
        for module in patched:
            setattr(module, "utcnow", original)  # noqa: B010

    return undo


@dataclass
class Job:
    kind: str
    arg: int | None
    not_before: datetime

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg is not None else self.kind


class SimQueue:
    """Redis as the worker sees it (the face of app.jobs.JobQueue that the code uses), in
    memory: jobs with deterministic ids collapse while queued; faults lose, duplicate and
    delay them; delivery order is the simulation's choice (reordering)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.jobs: list[Job] = []

    def _enqueue(self, kind: str, arg: int | None) -> bool:
        world = self.world
        job = Job(kind, arg, world.clock.now)
        if world.faults:
            roll = world.rng.random()
            if roll < 0.07:
                world.fault("queue:lost")
                return True  # Redis said yes, then lost it
            if roll < 0.14:
                world.fault("queue:delayed")
                job.not_before += timedelta(seconds=world.rng.randrange(5, 300))
            elif roll < 0.19:
                world.fault("queue:duplicated")
                self.jobs.append(Job(kind, arg, job.not_before))
                self.jobs.append(job)
                return True
        if any(j.key == job.key for j in self.jobs):
            return True
        self.jobs.append(job)
        return True

    async def relay_order(self, order_id: int) -> bool:
        return self._enqueue("relay_order", order_id)

    async def relay_due(self) -> bool:
        return self._enqueue("relay_due", None)

    async def relay_cancel(self, order_id: int) -> bool:
        return self._enqueue("relay_cancel", order_id)

    async def relay_refill(self, refill_id: int) -> bool:
        return self._enqueue("relay_refill", refill_id)

    async def sync_provider(self, provider_id: int) -> bool:
        return self._enqueue("sync_provider", provider_id)

    def ready(self) -> list[Job]:
        return [j for j in self.jobs if j.not_before <= self.world.clock.now]

    def take(self, job: Job) -> None:
        self.jobs.remove(job)


@dataclass
class Call:
    """A provider call parked at its await point, waiting for the simulation."""

    n: int
    root: str
    form: dict[str, str]
    ours: int | None
    future: asyncio.Future[httpx.Response]

    @property
    def action(self) -> str:
        return self.form.get("action", "")


class SimHttp:
    """The `Poster` the real ProviderClient posts through: parks the calling task."""

    def __init__(self, world: World, ours: int | None = None) -> None:
        self.world = world
        self.ours = ours

    async def post(self, url: str, *, content: str, headers: Mapping[str, str]) -> httpx.Response:
        assert url == URL
        return await self.world.park(form_of(content), self.ours)

    def as_client(self) -> httpx.AsyncClient:
        # The flows type their `http` as an AsyncClient; ProviderClient needs only `post`.
        return cast(httpx.AsyncClient, self)


ADD_MODES = (
    ("ok", 50),
    ("refused_permanent", 6),
    ("refused_transient", 8),
    ("timeout_before_create", 8),
    ("timeout_after_create", 8),
    ("garbage_after_create", 5),
    ("garbage_before_create", 3),
    ("worker_crash_after_create", 5),
    # A slow provider: the answer dribbles in past the total deadline (asyncio.timeout in
    # the client raises TimeoutError) after the order was created.
    ("deadline_after_create", 4),
    # Malformed answers: an id that is no id, an order named with an error or a 4xx
    # (created upstream), or the id of another order (nothing created).
    ("malformed_after_create", 5),
    ("duplicate_id", 3),
)
READ_MODES = (
    ("ok", 45),
    ("faulty", 40),
    ("garbage", 8),
    ("timeout", 7),
    ("deadline", 4),  # a slow provider: the page's answer never whole in time
    ("unreadable", 5),  # Partial reports without readable remains
)
# What a provider that created the order may answer instead of its id.
MALFORMED_ADDS: tuple[tuple[int, str], ...] = (
    (200, '{"order": {"id": 5}}'),
    (200, '{"order": false}'),
    (200, '{"order": "' + "x" * 65 + '"}'),
    (200, '{"order": "12\\u0000"}'),
    (200, '{"order": "7\\u202e1"}'),
    (200, '{"error": "Not enough funds on balance", "order": 5}'),
    (400, '{"order": 99}'),
)
CANCEL_MODES = (("ok", 60), ("refused", 15), ("timeout_before", 10), ("timeout_after", 15))


def weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


@dataclass
class World:
    clock: Clock
    provider: SimProvider = field(default_factory=SimProvider)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    faults: bool = True
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    calls: list[Call] = field(default_factory=list)
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # unexpected exceptions of the code
    trace: list[str] = field(default_factory=list)
    _calls_made: int = 0
    _tasks_made: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queue = SimQueue(self)

    def fault(self, kind: str) -> None:
        self.faults_by_kind[kind] += 1
        self.trace.append(f"  fault {kind}")

    def note(self, text: str) -> None:
        self.trace.append(f"  {text}")

    # -- tasks and parked calls -----------------------------------------------------------

    async def park(self, form: dict[str, str], ours: int | None) -> httpx.Response:
        self._calls_made += 1
        future: asyncio.Future[httpx.Response] = asyncio.get_running_loop().create_future()
        self.calls.append(Call(self._calls_made, ROOT.get(), form, ours, future))
        self._changed.set()
        return await future

    def spawn(self, label: str, work: Callable[[], Coroutine[Any, Any, object]]) -> None:
        self._tasks_made += 1
        name = f"{label}#{self._tasks_made}"

        async def run() -> object:
            ROOT.set(name)
            return await work()

        task = asyncio.get_running_loop().create_task(run())
        task.add_done_callback(lambda _: self._changed.set())
        self.tasks[name] = task

    def _parked_roots(self) -> set[str]:
        return {c.root for c in self.calls if not c.future.done()}

    async def settle(self) -> None:
        """Run until every task has finished or parked at a provider call."""
        while True:
            self._changed.clear()
            parked = self._parked_roots()
            busy = [t for n, t in self.tasks.items() if not t.done() and n not in parked]
            if not busy:
                break
            await self._changed.wait()
        for name, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[name]
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    self.note(f"error in {name}: {type(exc).__name__}: {exc}")
        self.calls = [c for c in self.calls if not c.future.done()]

    async def crash(self, root: str) -> None:
        """The worker running `root` dies at its await point."""
        task = self.tasks.get(root)
        if task is not None:
            task.cancel()
            self.note(f"crash {root}")
        await self.settle()

    async def restart(self) -> None:
        """Every worker dies and Redis loses its queue; the system restarts from the database."""
        for root in sorted({c.root for c in self.calls}):
            task = self.tasks.get(root)
            if task is not None:
                task.cancel()
        self.queue.jobs.clear()
        await self.settle()

    # -- the provider's answers -------------------------------------------------------------

    async def answer_together(self, calls: list[Call], *, faulty: bool) -> None:
        """Answers to several calls arriving at the same instant: their tasks run on
        together (their transactions overlap) before the simulation looks again."""
        for call in calls:
            await self.answer(call, faulty=faulty, settle=False)
        await self.settle()

    async def answer(self, call: Call, *, faulty: bool, settle: bool = True) -> None:
        """Decide the fate of one parked call and let its task run on."""
        rng = self.rng
        action, form, provider = call.action, call.form, self.provider
        if action == "add":
            mode = weighted(rng, ADD_MODES) if faulty else "ok"
            created = None
            if mode in ("ok", "timeout_after_create", "garbage_after_create") or mode in (
                "worker_crash_after_create",
                "deadline_after_create",
                "malformed_after_create",
            ):
                created = provider.create(form, call.ours)
            given = sorted(provider.orders, key=int)
            if mode == "duplicate_id" and not given:
                mode = "ok"
                created = provider.create(form, call.ours)
            if mode != "ok":
                self.fault(f"add:{mode}")
            self.note(f"add for order {call.ours}: {mode}")
            if mode == "worker_crash_after_create":
                await self.crash(call.root)
                return
            result: httpx.Response | BaseException
            if mode == "ok":
                assert created is not None
                result = json_response({"order": int(created.id)})
            elif mode == "refused_permanent":
                result = json_response({"error": "Incorrect link"})
            elif mode == "refused_transient":
                result = json_response({"error": "Not enough funds on balance"})
            elif mode == "timeout_before_create":
                result = httpx.ConnectTimeout("timed out", request=request())
            elif mode == "timeout_after_create":
                result = httpx.ReadTimeout("timed out", request=request())
            elif mode == "deadline_after_create":
                result = TimeoutError()
            elif mode == "malformed_after_create":
                status_code, raw = rng.choice(MALFORMED_ADDS)
                result = httpx.Response(
                    status_code,
                    content=raw.encode(),
                    headers={"content-type": "application/json"},
                    request=request(),
                )
            elif mode == "duplicate_id":
                result = json_response({"order": int(rng.choice(given))})
            else:
                result = GARBAGE
            self._resolve(call, result)
        elif action == "status":
            mode = weighted(rng, READ_MODES) if faulty else "ok"
            if mode != "ok":
                self.fault(f"status:{mode}")
            ids = (form.get("orders") or form.get("order") or "").split(",")
            if mode == "garbage":
                self._resolve(call, GARBAGE)
            elif mode == "timeout":
                self._resolve(call, httpx.ReadTimeout("timed out", request=request()))
            elif mode == "deadline":
                self._resolve(call, TimeoutError())
            else:
                body = {
                    i: provider.status_item(
                        i, rng if mode == "faulty" else None, unreadable=mode == "unreadable"
                    )
                    for i in ids
                }
                self.note(f"status answer {body}")
                self._resolve(call, json_response(body))
        elif action == "cancel":
            mode = weighted(rng, CANCEL_MODES) if faulty else "ok"
            if mode != "ok":
                self.fault(f"cancel:{mode}")
            ids = (form.get("orders") or form.get("order") or "").split(",")
            items: list[dict[str, Any]] = []
            for i in ids:
                order = provider.orders.get(i)
                if order is None:
                    items.append({"order": i, "cancel": {"error": "Incorrect order ID"}})
                elif mode == "refused" or order.status in FINAL:
                    items.append({"order": i, "cancel": {"error": "Order cannot be canceled"}})
                elif mode != "timeout_before":
                    order.cancel_asked = True
                    items.append({"order": int(i), "cancel": 1})
            self.note(f"cancel {ids}: {mode}")
            if mode.startswith("timeout"):
                self._resolve(call, httpx.ReadTimeout("timed out", request=request()))
            else:
                self._resolve(call, json_response(items))
        elif action == "refill":
            mode = weighted(rng, READ_MODES) if faulty else "ok"
            if mode != "ok":
                self.fault(f"refill:{mode}")
            if mode in ("ok", "faulty"):
                refill_id = str(len(provider.refills) + 1)
                provider.refills[refill_id] = "Pending"
                self._resolve(call, json_response({"refill": refill_id}))
            elif mode == "garbage":
                self._resolve(call, GARBAGE)
            else:
                self._resolve(call, httpx.ReadTimeout("timed out", request=request()))
        elif action == "refill_status":
            ids = (form.get("refills") or form.get("refill") or "").split(",")
            for i in ids:
                if i in provider.refills and rng.random() < 0.5:
                    provider.refills[i] = rng.choice(["In progress", "Completed", "Rejected"])
            self._resolve(
                call,
                json_response(
                    [{"refill": i, "status": provider.refills.get(i, "Rejected")} for i in ids]
                ),
            )
        else:
            self._resolve(call, json_response({"error": "Incorrect request"}))
        if settle:
            await self.settle()

    def _resolve(self, call: Call, result: httpx.Response | BaseException) -> None:
        if call.future.done():
            return
        if isinstance(result, BaseException):
            call.future.set_exception(result)
        else:
            call.future.set_result(result)

    def parked(self) -> list[Call]:
        return sorted((c for c in self.calls if not c.future.done()), key=lambda c: c.n)
