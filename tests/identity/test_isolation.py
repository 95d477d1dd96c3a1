"""Tenant A can never see or change tenant B's users, invitations or keys, on any endpoint."""

from __future__ import annotations

from tests.identity.conftest import Identity, key_headers, unique_email, user_headers
from tests.support import as_caller


def test_tenant_a_cannot_reach_tenant_b(identity: Identity) -> None:
    a, b = identity.register(company="Tenant A"), identity.register(company="Tenant B")
    identity.sql("UPDATE identity.tenants SET plan = 'starter' WHERE id = $1", b.tenant_id)
    b_member = identity.invite_and_join(b)
    b_inv = identity.post("/users/invitations", {"email": unique_email()}, b.headers).json()
    b_key = identity.post("/api-keys", {"name": "b"}, b.headers).json()
    a_key = identity.post("/api-keys", {"name": "a"}, a.headers).json()
    b_session = identity.get("/me/sessions", b.headers).json()[0]["id"]
    before = _snapshot(identity, b.tenant_id)

    callers = {
        "a owner": a.headers,
        "a admin key": key_headers(a_key["id"], a.tenant_id),
        # A's key id presented with B's tenant would be a forged assertion; the key still can't act.
    }
    for who, headers in callers.items():
        for method, path, body in (
            ("GET", f"/users/{b.user_id}", None),
            ("GET", f"/users/{b_member.user_id}", None),
            ("PATCH", f"/users/{b_member.user_id}", {"role": "admin"}),
            ("PATCH", f"/users/{b.user_id}", {"role": "member"}),
            ("DELETE", f"/users/{b_member.user_id}", None),
            ("DELETE", f"/users/invitations/{b_inv['id']}", None),
            ("DELETE", f"/api-keys/{b_key['id']}", None),
            ("DELETE", f"/me/sessions/{b_session}", None),
        ):
            resp = identity.call(method, path, headers, json=body)
            assert resp.status_code in (403, 404), (who, method, path, resp.text)
            assert resp.status_code == 404 or path.startswith("/me/sessions"), (who, path)
        users = identity.get("/users", headers).json()
        assert {u["id"] for u in users} == {a.user_id}, who
        assert identity.get("/tenant", headers).json()["id"] == a.tenant_id
        assert identity.get("/me", headers).json()["tenant"]["id"] == a.tenant_id
    keys = identity.get("/api-keys", a.headers).json()
    assert [k["id"] for k in keys] == [a_key["id"]]
    assert identity.get("/users/invitations", a.headers).json() == []

    # A user of A presenting B's tenant id (a forged combination) is not a member of B.
    mixed = as_caller("identity", tenant_id=b.tenant_id, user_id=a.user_id, role="owner")
    for method, path, body in (
        ("POST", "/users/invitations", {"email": unique_email()}),
        ("PATCH", f"/users/{b_member.user_id}", {"role": "admin"}),
        ("DELETE", f"/api-keys/{b_key['id']}", None),
        ("POST", "/api-keys", {"name": "sneaky"}),
        ("PATCH", "/tenant", {"name": "Owned"}),
    ):
        resp = identity.call(method, path, mixed, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
    assert identity.get("/me", mixed).status_code == 404

    # A refresh token and a logout cannot touch B's sessions either.
    out = identity.post("/auth/logout", {"refresh_token": b.refresh_token}, a.headers)
    assert out.status_code == 204
    assert _snapshot(identity, b.tenant_id) == before
    assert identity.post("/auth/refresh", {"refresh_token": b.refresh_token}).status_code == 200


def _snapshot(identity: Identity, tenant_id: str) -> list[tuple[object, ...]]:
    rows = identity.sql(
        "SELECT 'u' AS k, id::text, role AS v FROM identity.users WHERE tenant_id = $1"
        " UNION ALL SELECT 'i', id::text, coalesce(revoked_at::text, '') FROM identity.invitations"
        "  WHERE tenant_id = $1"
        " UNION ALL SELECT 'k', id::text, coalesce(revoked_at::text, '') FROM identity.api_keys"
        "  WHERE tenant_id = $1"
        " UNION ALL SELECT 's', id::text, coalesce(revoked_at::text, '') || coalesce(rotated_at::text, '')"
        "  FROM identity.refresh_tokens WHERE tenant_id = $1"
        " UNION ALL SELECT 't', id::text, name FROM identity.tenants WHERE id = $1 ORDER BY 1, 2",
        tenant_id,
    )
    return [tuple(r) for r in rows]


def test_user_headers_helper_reads_the_claims(identity: Identity) -> None:
    acct = identity.register()
    assert identity.get("/me", user_headers(acct.access_token)).json()["user"]["id"] == acct.user_id
