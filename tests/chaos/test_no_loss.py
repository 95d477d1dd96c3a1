"""Nothing lost, nothing done twice, while the platform is being killed.

Signups (identity → outbox → bus → notifier emails, usage audit), Stripe checkouts (fake Stripe →
signed webhooks → billing → bus → audit) and API calls (gateway → usage records) are driven while
worker processes are SIGKILLed and restarted, Redis (AOF) is restarted once and Postgres once.
Afterwards every email is in the SMTP catcher (once, or twice for a mail in flight at a crash:
SMTP is at-least-once), every event has exactly one audit row,
every answered API call exactly one usage row, and every subscription is in its final state."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import stripe

from shared.devstack import DevEnv, DevStack
from tests.billing.conftest import KEY, Billing, Tenant
from tests.chaos.conftest import LONG, WORKERS, child, kill_and_restart, wait_until
from tests.notifier.helpers import Mailbox
from tests.platform import Platform
from tests.support import anonymous

SIGNUPS = 400 if LONG else 60
CALLS_PER_TENANT = 20
SUBSCRIPTIONS = 20 if LONG else 4
CONCURRENCY = 6
PASSWORD = "Velvet-Orbit-Lantern-42"
MAILS_PER_SIGNUP = 2  # welcome + verify your email
SETTLE_S = 300 if LONG else 210  # a job held by a killed worker runs again after its timeout


@dataclass
class Run:
    emails: list[str] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # request ids the gateway answered
    statuses: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    done: int = 0
    chaos: list[str] = field(default_factory=list)


async def _retrying(
    call: Callable[[], Any], run: Run, ok: Callable[[httpx.Response], bool]
) -> httpx.Response:
    for _ in range(120):
        try:
            resp: httpx.Response = await call()
            if ok(resp):
                return resp
        except httpx.TransportError:
            pass
        run.retries += 1
        await asyncio.sleep(0.5)
    raise AssertionError("a request never succeeded")


async def _signup_and_call(platform: Platform, run: Run, http: httpx.AsyncClient) -> None:
    email = f"chaos-{uuid.uuid4().hex[:12]}@example.com"
    ip = f"10.77.{random.randint(0, 255)}.{random.randint(1, 254)}"
    body = {"email": email, "password": PASSWORD, "company_name": "Chaos Co"}
    identity = platform.url("identity")

    async def register() -> httpx.Response:
        return await http.post(f"{identity}/auth/register", json=body, headers=anonymous("identity", ip=ip))

    resp = await _retrying(register, run, lambda r: r.status_code in (201, 409))
    if resp.status_code == 409:  # created, but the answer was lost: sign in instead

        async def sign_in() -> httpx.Response:
            creds = {"email": email, "password": PASSWORD}
            return await http.post(f"{identity}/auth/login", json=creds, headers=anonymous("identity", ip=ip))

        resp = await _retrying(sign_in, run, lambda r: r.status_code == 200)
    account = resp.json()
    run.emails.append(email)
    run.tenants.append(account["tenant_id"])
    bearer = {"Authorization": f"Bearer {account['access_token']}"}
    gateway = platform.url("gateway")
    for _ in range(CALLS_PER_TENANT):
        rid = uuid.uuid4().hex
        try:
            got = await http.get(f"{gateway}/me", headers={**bearer, "X-Request-ID": rid})
        except httpx.TransportError:
            continue
        run.answered.append(rid)
        run.statuses[got.status_code] += 1


def _subscriptions(billing: Billing, run: Run) -> list[tuple[Tenant, bool]]:
    made = []
    for i in range(SUBSCRIPTIONS):
        tenant = Tenant(uuid.uuid4(), uuid.uuid4())
        for _ in range(60):
            try:
                billing.subscribe(tenant)
                break
            except (AssertionError, httpx.HTTPError, stripe.StripeError):
                run.retries += 1  # a checkout that failed half-way: its webhooks may still land
                time.sleep(1)
                if billing.subscription(tenant)["status"] == "active":
                    break
        cancel = i % 2 == 1
        if cancel:
            for _ in range(60):
                resp = billing.post("/billing/subscription/cancel", tenant)
                if resp.status_code in (200, 409):
                    break
                run.retries += 1
                time.sleep(1)
        made.append((tenant, cancel))
    return made


Plan = list[tuple[float, str, Callable[[], None]]]


def _chaos_plan(platform: Platform, stack: DevStack) -> Plan:
    plan: Plan = []
    rnd = random.Random(7)
    for step in range(1, 10):
        name = rnd.choice(WORKERS)
        plan.append((step / 10, f"SIGKILL {name}", lambda name=name: kill_and_restart(platform, name)))
    plan.append((0.35, "restart redis", stack.restart_redis))
    plan.append((0.65, "restart postgres", stack.restart_postgres))
    plan.sort(key=lambda p: p[0])
    return plan


async def _drive(
    platform: Platform, stack: DevStack, billing: Billing, run: Run
) -> list[tuple[Tenant, bool]]:
    plan = _chaos_plan(platform, stack)
    progress = asyncio.Event()
    done_actions = 0

    async def chaos() -> None:
        nonlocal done_actions
        for at, label, action in plan:
            while run.done / SIGNUPS < at:
                progress.clear()
                await progress.wait()
            began = time.monotonic()
            await asyncio.to_thread(action)
            run.chaos.append(f"{at:.0%}: {label} ({time.monotonic() - began:.1f} s)")
            done_actions += 1

    sem = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def one() -> None:
            async with sem:
                # Do not run ahead of the chaos: each action happens under load.
                while done_actions < len(plan) and plan[done_actions][0] < run.done / SIGNUPS - 0.1:
                    await asyncio.sleep(0.1)
                await _signup_and_call(platform, run, http)
                run.done += 1
                progress.set()

        chaos_task = asyncio.create_task(chaos())
        subs = asyncio.create_task(asyncio.to_thread(_subscriptions, billing, run))
        await asyncio.gather(*(one() for _ in range(SIGNUPS)))
        await chaos_task
        return await subs


async def _settled(
    platform: Platform, peers: DevEnv, run: Run, subs: list[tuple[Tenant, bool]]
) -> dict[str, int]:
    tenant_ids = [uuid.UUID(t) for t in run.tenants] + [t.id for t, _ in subs]
    conn = await asyncpg.connect(peers.database_url)
    try:
        schemas = [
            r["table_schema"]
            for r in await conn.fetch(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
            )
        ]
        expected = {
            r["id"]
            for schema in schemas
            for r in await conn.fetch(
                f"SELECT id FROM {schema}.outbox"
                " WHERE (convert_from(payload, 'UTF8')::jsonb->>'tenant_id')::uuid = ANY($1::uuid[])",
                tenant_ids,
            )
        }
        audited = Counter(
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM usage.audit_logs WHERE tenant_id = ANY($1::uuid[])", tenant_ids
            )
        )
        usage = Counter(
            r["request_id"]
            for r in await conn.fetch(
                "SELECT request_id FROM usage.usage_logs WHERE request_id = ANY($1::text[])", run.answered
            )
        )
    finally:
        await conn.close()
    return {
        "events": len(expected),
        "audit_rows": sum(audited.values()),
        "audit_missing": len(expected - set(audited)),
        "audit_twice": sum(1 for n in audited.values() if n > 1),
        "calls": len(run.answered),
        "usage_rows": sum(usage.values()),
        "usage_missing": len(set(run.answered) - set(usage)),
        "usage_twice": sum(1 for n in usage.values() if n > 1),
    }


def test_nothing_lost_nothing_twice(platform: Platform, peers: DevEnv, stack: DevStack) -> None:
    sdk = stripe.StripeClient(
        KEY,
        base_addresses={"api": peers.stripe_api_base},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
    )
    billing = Billing(platform.url("billing"), platform.env, sdk, peers.stripe_api_base)
    run = Run()
    began = time.monotonic()
    subs = asyncio.run(_drive(platform, stack, billing, run))
    driven = time.monotonic() - began
    for name in WORKERS:  # every worker must have survived the peers' restarts by itself
        assert child(platform, name).proc.poll() is None, f"{name} died during the run"

    mailbox = Mailbox(peers.mail_dir, stack.smtp_control_path)
    counts: dict[str, int] = {}

    def all_in() -> bool:
        counts.update(asyncio.run(_settled(platform, peers, run, subs)))
        mails = [len(mailbox.to(e)) for e in run.emails]
        counts["mails"] = sum(mails)
        counts["mails_missing"] = sum(max(0, MAILS_PER_SIGNUP - n) for n in mails)
        counts["mails_twice"] = sum(1 for n in mails if n > MAILS_PER_SIGNUP)
        return counts["audit_missing"] == 0 and counts["usage_missing"] == 0 and counts["mails_missing"] == 0

    try:
        wait_until(all_in, "every email, audit row and usage row", SETTLE_S)
    finally:
        print(f"\n[chaos] driven in {driven:.0f} s: {SIGNUPS} signups, {SUBSCRIPTIONS} subscriptions,")
        print(f"[chaos] statuses of answered calls {dict(run.statuses)}, client retries {run.retries}")
        print("[chaos] faults: " + "; ".join(run.chaos))
        print("[chaos] counts: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    time.sleep(2)  # anything arriving twice would come now
    all_in()
    # Email is at-least-once across a crash: a mail the SMTP server accepted just before its
    # worker was killed (or before Postgres went away), not yet marked sent, is sent again. Each
    # such fault may repeat at most the jobs one worker runs at once (arq's max_jobs, 10).
    faults = sum("notifier" in f or "postgres" in f for f in run.chaos)
    print(f"[chaos] mails sent twice: {counts['mails_twice']} (at most {10 * faults} for {faults} faults)")
    assert counts["mails_missing"] == 0
    assert counts["mails_twice"] <= 10 * faults
    assert counts["mails"] == MAILS_PER_SIGNUP * SIGNUPS + counts["mails_twice"]
    assert counts["audit_twice"] == 0 and counts["audit_rows"] == counts["events"]
    assert counts["usage_twice"] == 0 and counts["usage_rows"] == counts["calls"]
    assert counts["calls"] == SIGNUPS * CALLS_PER_TENANT
    assert len(run.chaos) == 11
    for tenant, canceled in subs:
        view = billing.subscription(tenant)
        assert (view["status"], view["plan"], view["cancel_at_period_end"]) == ("active", "starter", canceled)


@pytest.fixture(autouse=True)
def _note_scale() -> None:
    print(f"\n[chaos] scale: {'long' if LONG else 'short'}")
