"""Register → login → refresh → logout, refresh-token theft detection, password change, JWKS."""

from __future__ import annotations

import time

import httpx

from shared.auth.tokens import TokenVerifier
from tests.identity.conftest import PASSWORD, Identity, claims_of, key_headers, unique_email, user_headers
from tests.support import anonymous


def _verifier(identity: Identity) -> TokenVerifier:
    jwks = httpx.get(f"{identity.base}/.well-known/jwks.json")  # public: no assertion
    assert jwks.status_code == 200
    assert "max-age" in jwks.headers["cache-control"]
    return TokenVerifier(jwks.json(), issuer="catalytic-identity", audience="catalytic-api")


def test_register_login_refresh_logout_round_trip(identity: Identity) -> None:
    email = unique_email("Round.Trip")
    headers = {**anonymous("identity"), "X-Request-ID": "corr-identity-roundtrip-01"}
    body = {
        "email": email.upper(),
        "password": PASSWORD,
        "company_name": "  Round Trip Ltd ",
        "last_name": "L",
    }
    reg = identity.post("/auth/register", body, headers)
    assert reg.status_code == 201, reg.text
    got = reg.json()
    assert got["token_type"] == "bearer"
    assert got["expires_in"] == 900
    claims = _verifier(identity).verify(got["access_token"])
    assert (claims.sub, claims.tenant_id, claims.role, claims.plan) == (
        got["user_id"],
        got["tenant_id"],
        "owner",
        "free",
    )
    assert claims.exp - claims.iat == 900

    created = identity.event("identity.tenant.created", owner_user_id=got["user_id"])
    assert created.data.name == "Round Trip Ltd"
    assert created.correlation_id == "corr-identity-roundtrip-01"
    registered = identity.event("identity.user.registered", user_id=got["user_id"])
    assert registered.data.email == email.lower()
    assert registered.actor.kind == "user"

    me = identity.get("/me", user_headers(got["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == email.lower()
    assert me.json()["tenant"]["plan"] == "free"
    assert me.json()["user"]["email_verified"] is False

    login = identity.login(email.upper())
    assert login.status_code == 200, login.text
    pair = login.json()
    assert pair["user_id"] == got["user_id"]

    refreshed = identity.post("/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != pair["refresh_token"]
    assert claims_of(new["access_token"])["jti"] != claims_of(pair["access_token"])["jti"]

    jti = claims_of(new["access_token"])["jti"]
    out = identity.post("/auth/logout", None, user_headers(new["access_token"]))
    assert out.status_code == 204, out.text
    assert identity.redis.get(f"revoked:jti:{jti}") == "1"
    assert 0 < identity.redis.ttl(f"revoked:jti:{jti}") <= 901
    after = identity.post("/auth/refresh", {"refresh_token": new["refresh_token"]})
    assert after.status_code == 401
    assert after.json()["code"] == "refresh_token_invalid"
    revoked = identity.event("identity.session.revoked", jti=jti)
    assert str(revoked.data.family_id) == str(
        identity.event("identity.session.refreshed", user_id=got["user_id"]).data.family_id
    )
    # The registration's own session is a different family and still works.
    assert identity.post("/auth/refresh", {"refresh_token": got["refresh_token"]}).status_code == 200


def test_rotated_refresh_token_reused_revokes_the_family(identity: Identity) -> None:
    acct = identity.register()
    first = identity.login(acct.email).json()
    other = identity.login(acct.email).json()  # a second device: its own family
    second = identity.post("/auth/refresh", {"refresh_token": first["refresh_token"]}).json()

    before = int(time.time())
    stolen = identity.post("/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401
    assert stolen.json()["code"] == "refresh_token_reused"
    # The family is dead: the legitimate-looking newest token is refused too.
    latest = identity.post("/auth/refresh", {"refresh_token": second["refresh_token"]})
    assert latest.status_code == 401
    assert latest.json()["code"] == "refresh_token_invalid"
    # Every access token issued before now is refused by the gateway.
    mark = identity.redis.get(f"revoked:user:{acct.user_id}")
    assert mark is not None and before <= int(mark) <= int(time.time())
    assert 0 < identity.redis.ttl(f"revoked:user:{acct.user_id}") <= 900
    detected = identity.event("identity.refresh_reuse.detected", user_id=acct.user_id)
    assert str(detected.tenant_id) == acct.tenant_id
    rows = identity.sql(
        "SELECT count(*) AS n FROM identity.refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL",
        detected.data.family_id,
    )
    assert rows[0]["n"] == 0
    # Another device's login is another family: it goes on.
    assert identity.post("/auth/refresh", {"refresh_token": other["refresh_token"]}).status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_answer(identity: Identity) -> None:
    acct = identity.register()
    wrong = identity.login(acct.email, "Not-The-Password-99")
    unknown = identity.login(unique_email("nobody"), "Not-The-Password-99")
    assert wrong.status_code == unknown.status_code == 401
    a, b = wrong.json(), unknown.json()
    for body in (a, b):
        body.pop("request_id")
    assert a == b
    assert a["code"] == "invalid_credentials"


def test_duplicate_email_is_409_whatever_the_case(identity: Identity) -> None:
    acct = identity.register()
    again = identity.post(
        "/auth/register", {"email": acct.email.upper(), "password": PASSWORD, "company_name": "Other"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


def test_weak_passwords_name_the_rule(identity: Identity) -> None:
    email = unique_email("weak")
    cases = {
        "short-1A": "password_too_short",
        "1234567890": "password_too_common",
        "aaaaaaaaaaaaaa": "password_too_common",
        f"{email.split('@')[0]}!!": "password_contains_personal_info",
        "Zebra Lattice Inc 2024": "password_contains_personal_info",
        "x" * 129 + "yz!": "password_too_long",
    }
    for password, code in cases.items():
        resp = identity.post(
            "/auth/register", {"email": email, "password": password, "company_name": "Zebra Lattice Inc"}
        )
        assert resp.status_code == 422, (password, resp.text)
        assert resp.json()["code"] == code, password
        assert resp.json()["detail"]
    assert identity.sql("SELECT 1 FROM identity.users WHERE email = $1", email) == []


def test_change_password_ends_other_sessions(identity: Identity) -> None:
    acct = identity.register()
    elsewhere = identity.login(acct.email).json()
    wrong = identity.post(
        "/me/password",
        {"current_password": "Wrong-Password-77", "new_password": "Brand-New-Phrase-11"},
        acct.headers,
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "wrong_password"
    changed = identity.post(
        "/me/password", {"current_password": PASSWORD, "new_password": "Brand-New-Phrase-11"}, acct.headers
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    assert identity.redis.get(f"revoked:user:{acct.user_id}") is not None
    # The fresh token is not older than the revocation mark, so the gateway accepts it.
    assert claims_of(fresh["access_token"])["iat"] >= int(
        identity.redis.get(f"revoked:user:{acct.user_id}") or 0
    )
    assert identity.post("/auth/refresh", {"refresh_token": elsewhere["refresh_token"]}).status_code == 401
    assert identity.post("/auth/refresh", {"refresh_token": fresh["refresh_token"]}).status_code == 200
    assert identity.login(acct.email).status_code == 401
    assert identity.login(acct.email, "Brand-New-Phrase-11").status_code == 200
    assert identity.event("identity.password.changed", user_id=acct.user_id).data.email == acct.email


def test_logout_and_password_change_need_a_user_session(identity: Identity) -> None:
    acct = identity.register()
    as_key = key_headers("01a1ffc7-3964-7169-ba15-148dc9203355", acct.tenant_id)
    resp = identity.post("/auth/logout", None, as_key)
    assert resp.status_code == 403
    assert resp.json()["code"] == "user_session_required"
    anon = identity.post("/auth/logout", None, anonymous("identity"))
    assert anon.status_code == 401


def test_jwks_publishes_the_signing_key(identity: Identity) -> None:
    acct = identity.register()
    kid = __import__("jwt").get_unverified_header(acct.access_token)["kid"]
    keys = httpx.get(f"{identity.base}/.well-known/jwks.json").json()["keys"]
    assert kid in {k["kid"] for k in keys}
    assert all(k["alg"] in ("RS256", "EdDSA") and "d" not in k for k in keys)


def test_list_and_end_own_sessions(identity: Identity) -> None:
    acct = identity.register()
    laptop = identity.login(acct.email, ip="198.51.100.7").json()
    mine = identity.get("/me/sessions", user_headers(laptop["access_token"]))
    assert mine.status_code == 200
    listed = mine.json()
    assert len(listed) == 2  # the registration's login and the laptop's
    current = [s for s in listed if s["current"]]
    assert len(current) == 1 and current[0]["ip"] == "198.51.100.7"
    other = next(s for s in listed if not s["current"])
    # Signing the other device out ends its refresh family only.
    assert (
        identity.call(
            "DELETE", f"/me/sessions/{other['id']}", user_headers(laptop["access_token"])
        ).status_code
        == 204
    )
    assert identity.post("/auth/refresh", {"refresh_token": acct.refresh_token}).status_code == 401
    assert identity.event("identity.session.revoked", family_id=other["id"]).data.reason == "user_revoked"
    # Another user cannot end it (or see it).
    stranger = identity.register()
    gone = identity.call("DELETE", f"/me/sessions/{current[0]['id']}", stranger.headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "session_not_found"
    assert current[0]["id"] not in {s["id"] for s in identity.get("/me/sessions", stranger.headers).json()}
    # Ending the current one revokes this access token too.
    jti = claims_of(laptop["access_token"])["jti"]
    ended = identity.call("DELETE", f"/me/sessions/{current[0]['id']}", user_headers(laptop["access_token"]))
    assert ended.status_code == 204
    assert identity.redis.get(f"revoked:jti:{jti}") == "1"
    assert identity.post("/auth/refresh", {"refresh_token": laptop["refresh_token"]}).status_code == 401
