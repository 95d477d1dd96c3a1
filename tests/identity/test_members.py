"""Invitations, roles, the last owner, seats, removing users, the tenant."""

from __future__ import annotations

from tests.identity.conftest import PASSWORD, Account, Identity, unique_email


def test_invitation_accept(identity: Identity, owner: Account) -> None:
    email = unique_email("Invitee")
    sent = identity.post("/users/invitations", {"email": email.upper(), "role": "admin"}, owner.headers)
    assert sent.status_code == 201, sent.text
    inv = sent.json()
    assert (inv["email"], inv["role"], inv["invited_by"]) == (email.lower(), "admin", owner.user_id)
    assert identity.get("/users/invitations", owner.headers).json()[0]["id"] == inv["id"]
    event = identity.event("identity.user.invited", invitation_id=inv["id"])
    assert event.data.tenant_name == "Acme Lattice"
    assert str(event.tenant_id) == owner.tenant_id

    bad = identity.post("/auth/accept-invitation", {"token": event.data.token, "password": "short"})
    assert bad.status_code == 422
    joined = identity.post(
        "/auth/accept-invitation", {"token": event.data.token, "password": PASSWORD, "first_name": "Grace"}
    )
    assert joined.status_code == 201, joined.text
    pair = joined.json()
    assert pair["tenant_id"] == owner.tenant_id
    users = identity.get("/users", owner.headers).json()
    assert {u["email"]: u["role"] for u in users} == {owner.email: "owner", email.lower(): "admin"}
    assert next(u for u in users if u["role"] == "admin")["email_verified"] is True
    registered = identity.event("identity.user.registered", user_id=pair["user_id"])
    assert registered.data.role == "admin"
    again = identity.post("/auth/accept-invitation", {"token": event.data.token, "password": PASSWORD})
    assert again.status_code == 400
    assert again.json()["code"] == "invitation_invalid"
    assert identity.get("/users/invitations", owner.headers).json() == []
    assert identity.login(email).status_code == 200


def test_invitation_for_a_registered_email_or_twice_is_refused(identity: Identity, owner: Account) -> None:
    other = identity.register()
    taken = identity.post("/users/invitations", {"email": other.email}, owner.headers)
    assert taken.status_code == 409
    assert taken.json()["code"] == "email_taken"
    email = unique_email("twice")
    assert identity.post("/users/invitations", {"email": email}, owner.headers).status_code == 201
    dup = identity.post("/users/invitations", {"email": email}, owner.headers)
    assert dup.status_code == 409
    assert dup.json()["code"] == "invitation_pending"


def test_role_rules(identity: Identity, owner: Account) -> None:
    identity.sql("UPDATE identity.tenants SET plan = 'starter' WHERE id = $1", owner.tenant_id)
    admin = identity.invite_and_join(owner, "admin")
    member = identity.invite_and_join(owner, "member")

    for method, path, body in (
        ("POST", "/users/invitations", {"email": unique_email()}),
        ("PATCH", f"/users/{admin.user_id}", {"role": "member"}),
        ("DELETE", f"/users/{admin.user_id}", None),
        ("PATCH", "/tenant", {"name": "Mine now"}),
        ("POST", "/api-keys", {"name": "k"}),
        ("GET", "/api-keys", None),
    ):
        resp = identity.call(method, path, member.headers, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["code"] == "insufficient_role"
    assert identity.get("/users", member.headers).status_code == 200  # members may look

    # An admin manages members and admins, never the owner role.
    promote = identity.call("PATCH", f"/users/{member.user_id}", admin.headers, json={"role": "owner"})
    assert promote.status_code == 403
    assert promote.json()["code"] == "owner_required"
    demote_owner = identity.call("PATCH", f"/users/{owner.user_id}", admin.headers, json={"role": "member"})
    assert demote_owner.json()["code"] == "owner_required"
    remove_owner = identity.call("DELETE", f"/users/{owner.user_id}", admin.headers)
    assert remove_owner.json()["code"] == "owner_required"
    invite_owner = identity.post(
        "/users/invitations", {"email": unique_email(), "role": "owner"}, admin.headers
    )
    assert invite_owner.json()["code"] == "owner_required"
    up = identity.call("PATCH", f"/users/{member.user_id}", admin.headers, json={"role": "admin"})
    assert up.status_code == 200
    assert up.json()["role"] == "admin"
    changed = identity.event("identity.user.role_changed", user_id=member.user_id)
    assert (changed.data.old_role, changed.data.new_role) == ("member", "admin")
    assert changed.actor.id == admin.user_id
    # The member's old token (role claim "member") is revoked; a refresh brings the new role.
    assert identity.redis.get(f"revoked:user:{member.user_id}") is not None
    refreshed = identity.post("/auth/refresh", {"refresh_token": member.refresh_token}).json()
    from tests.identity.conftest import claims_of

    assert claims_of(refreshed["access_token"])["role"] == "admin"

    # The role is read from the database: a stale "admin" claim of a demoted user does not work.
    identity.call("PATCH", f"/users/{admin.user_id}", owner.headers, json={"role": "member"})
    stale = identity.post("/users/invitations", {"email": unique_email()}, admin.headers)
    assert stale.status_code == 403


def test_the_last_owner_stays(identity: Identity, owner: Account) -> None:
    demote = identity.call("PATCH", f"/users/{owner.user_id}", owner.headers, json={"role": "admin"})
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    leave = identity.call("DELETE", f"/users/{owner.user_id}", owner.headers)
    assert leave.status_code == 409
    assert leave.json()["code"] == "last_owner"
    second = identity.invite_and_join(owner, "owner")
    assert (
        identity.call("PATCH", f"/users/{owner.user_id}", second.headers, json={"role": "admin"}).status_code
        == 200
    )
    last = identity.call("DELETE", f"/users/{second.user_id}", second.headers)
    assert last.status_code == 409
    roles = {u["id"]: u["role"] for u in identity.get("/users", second.headers).json()}
    assert roles == {owner.user_id: "admin", second.user_id: "owner"}


def test_seat_limit(identity: Identity, owner: Account) -> None:
    # Free: 2 seats. The owner holds one, a pending invitation the other.
    first = identity.post("/users/invitations", {"email": unique_email()}, owner.headers)
    assert first.status_code == 201
    full = identity.post("/users/invitations", {"email": unique_email()}, owner.headers)
    assert full.status_code == 409
    assert full.json()["code"] == "seat_limit_reached"
    seats = identity.get("/tenant", owner.headers).json()["seats"]
    assert seats == {"used": 2, "limit": 2}
    revoked = identity.call("DELETE", f"/users/invitations/{first.json()['id']}", owner.headers)
    assert revoked.status_code == 204
    assert identity.event("identity.invitation.revoked", invitation_id=first.json()["id"])
    assert identity.post("/users/invitations", {"email": unique_email()}, owner.headers).status_code == 201
    # A plan downgrade after inviting: accepting would exceed the seats.
    identity.sql("UPDATE identity.tenants SET plan = 'starter' WHERE id = $1", owner.tenant_id)
    extra = identity.post("/users/invitations", {"email": unique_email()}, owner.headers)
    assert extra.status_code == 201
    identity.invite_and_join(owner)
    identity.sql("UPDATE identity.tenants SET plan = 'free' WHERE id = $1", owner.tenant_id)
    token = identity.event("identity.user.invited", invitation_id=extra.json()["id"]).data.token
    refused = identity.post("/auth/accept-invitation", {"token": token, "password": PASSWORD})
    assert refused.status_code == 409
    assert refused.json()["code"] == "seat_limit_reached"


def test_removing_a_user_ends_their_sessions(identity: Identity, owner: Account) -> None:
    member = identity.invite_and_join(owner)
    gone = identity.call("DELETE", f"/users/{member.user_id}", owner.headers)
    assert gone.status_code == 204
    assert identity.redis.get(f"revoked:user:{member.user_id}") is not None
    assert identity.post("/auth/refresh", {"refresh_token": member.refresh_token}).status_code == 401
    assert identity.login(member.email).status_code == 401
    assert identity.event("identity.user.removed", user_id=member.user_id).data.email == member.email
    assert identity.call("DELETE", f"/users/{member.user_id}", owner.headers).status_code == 404


def test_tenant_read_and_rename(identity: Identity, owner: Account) -> None:
    got = identity.get("/tenant", owner.headers).json()
    assert got["name"] == "Acme Lattice"
    assert got["api_keys"] == {"used": 0, "limit": 2}
    renamed = identity.call("PATCH", "/tenant", owner.headers, json={"name": "  Lattice Works "})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Lattice Works"
    assert identity.event("identity.tenant.updated", name="Lattice Works").tenant_id is not None
    blank = identity.call("PATCH", "/tenant", owner.headers, json={"name": "   "})
    assert blank.status_code == 422
