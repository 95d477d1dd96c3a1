"""Who may call what: every billing route is the caller's own tenant's, owners and admins only."""

from __future__ import annotations

import httpx
import pytest
from asyncpg import Connection

from tests.billing.conftest import Billing, Tenant
from tests.support import anonymous, as_caller

ADMIN_ROUTES = [
    ("GET", "/billing/subscription"),
    ("GET", "/billing/invoices"),
    ("POST", "/billing/subscription/cancel"),
    ("POST", "/billing/portal"),
    ("POST", "/billing/checkout"),
]


async def test_a_tenant_sees_and_changes_only_its_own(
    billing: Billing, tenant: Tenant, other: Tenant, db: Connection
) -> None:
    billing.subscribe(tenant, "starter")
    mine = billing.get("/billing/invoices", tenant).json()["data"]
    assert len(mine) == 1

    view = billing.subscription(other)
    assert (view["plan"], view["status"], view["subscription_id"]) == ("free", "none", None)
    assert billing.get("/billing/invoices", other).json() == {"data": [], "has_more": False}
    # Another tenant's invoice id as a cursor reveals nothing.
    assert billing.get("/billing/invoices", other, starting_after=mine[0]["id"]).json()["data"] == []
    cancel = billing.post("/billing/subscription/cancel", other)
    assert (cancel.status_code, cancel.json()["code"]) == (404, "no_subscription")
    assert billing.subscription(tenant)["cancel_at_period_end"] is False

    assert billing.post("/billing/portal", other).status_code == 201
    assert billing.post("/billing/checkout", other, json={"plan": "starter"}).status_code == 201
    rows = await db.fetch(
        "SELECT tenant_id, stripe_customer_id FROM customers WHERE tenant_id = ANY($1::uuid[])",
        [tenant.id, other.id],
    )
    customers = {r["tenant_id"]: r["stripe_customer_id"] for r in rows}
    assert len(set(customers.values())) == 2  # each tenant its own Stripe customer
    sessions = await db.fetch("SELECT tenant_id FROM checkout_sessions WHERE tenant_id = $1", other.id)
    assert len(sessions) == 1


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_members_and_anonymous_callers_are_refused(
    billing: Billing, tenant: Tenant, method: str, path: str
) -> None:
    body = {"plan": "starter"} if path.endswith("checkout") else None
    member = httpx.request(method, f"{billing.url}{path}", headers=tenant.headers("member"), json=body)
    assert (member.status_code, member.headers["content-type"][:24]) == (403, "application/problem+json")
    anon = httpx.request(method, f"{billing.url}{path}", headers=anonymous("billing"), json=body)
    assert anon.status_code == 401
    bare = httpx.request(method, f"{billing.url}{path}", json=body)
    assert bare.status_code == 401
    foreign = as_caller("identity", tenant_id=tenant.id, user_id=tenant.user_id)  # minted for another service
    assert httpx.request(method, f"{billing.url}{path}", headers=foreign, json=body).status_code == 401


def test_api_keys_need_the_admin_scope(billing: Billing, tenant: Tenant) -> None:
    def call(scopes: tuple[str, ...]) -> httpx.Response:
        headers = as_caller(
            "billing", kind="api_key", tenant_id=tenant.id, api_key_id=tenant.user_id, scopes=scopes
        )
        return httpx.get(f"{billing.url}/billing/subscription", headers=headers)

    assert call(("read",)).status_code == 403
    allowed = call(("admin",))
    assert allowed.status_code == 200
    assert allowed.json()["status"] == "none"
