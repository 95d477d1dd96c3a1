"""Password reset and email verification, end to end: the token is read from the outbox event
the notifier turns into an email (it is nowhere else)."""

from __future__ import annotations

import hashlib

from tests.identity.conftest import PASSWORD, Identity, unique_email

NEW_PASSWORD = "Quiet-Harbor-Compass-58"


def test_password_reset_end_to_end(identity: Identity) -> None:
    acct = identity.register()
    other_session = identity.login(acct.email).json()
    asked = identity.post("/auth/password-reset", {"email": acct.email.upper()})
    assert asked.status_code == 202, asked.text
    event = identity.event("identity.password_reset.requested", user_id=acct.user_id)
    token = event.data.token
    assert event.data.email == acct.email
    assert str(event.tenant_id) == acct.tenant_id
    # Stored hashed, valid one hour.
    rows = identity.sql(
        "SELECT token_hash, expires_at - created_at AS ttl FROM identity.one_time_tokens"
        " WHERE user_id = $1 AND purpose = 'password_reset'",
        acct.user_id,
    )
    assert [r["token_hash"] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert 3590 <= rows[0]["ttl"].total_seconds() <= 3610

    weak = identity.post("/auth/password-reset/confirm", {"token": token, "new_password": "short"})
    assert weak.status_code == 422
    assert weak.json()["code"] == "password_too_short"

    done = identity.post("/auth/password-reset/confirm", {"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    assert identity.login(acct.email).status_code == 401
    assert identity.login(acct.email, NEW_PASSWORD).status_code == 200
    again = identity.post(
        "/auth/password-reset/confirm", {"token": token, "new_password": "Another-Phrase-Here-9"}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "reset_token_invalid"
    # Every session of the user ended: refresh tokens here, access tokens at the gateway.
    for old in (acct.refresh_token, other_session["refresh_token"]):
        assert identity.post("/auth/refresh", {"refresh_token": old}).status_code == 401
    assert identity.redis.get(f"revoked:user:{acct.user_id}") is not None
    assert identity.event("identity.password.changed", user_id=acct.user_id)
    # Following the link proved the mailbox.
    login = identity.login(acct.email, NEW_PASSWORD).json()
    from tests.identity.conftest import user_headers

    assert identity.get("/me", user_headers(login["access_token"])).json()["user"]["email_verified"] is True


def test_reset_for_unknown_email_is_accepted_and_does_nothing(identity: Identity) -> None:
    before = identity.outbox_seq()
    resp = identity.post("/auth/password-reset", {"email": unique_email("ghost")})
    assert resp.status_code == 202
    assert identity.outbox_seq() == before


def test_newer_reset_link_voids_the_older_and_expired_links_fail(identity: Identity) -> None:
    acct = identity.register()
    identity.post("/auth/password-reset", {"email": acct.email})
    first = identity.event("identity.password_reset.requested", user_id=acct.user_id).data.token
    identity.post("/auth/password-reset", {"email": acct.email})
    second = identity.event("identity.password_reset.requested", user_id=acct.user_id).data.token
    assert first != second
    old = identity.post("/auth/password-reset/confirm", {"token": first, "new_password": NEW_PASSWORD})
    assert old.status_code == 400
    identity.sql(
        "UPDATE identity.one_time_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        hashlib.sha256(second.encode()).hexdigest(),
    )
    expired = identity.post("/auth/password-reset/confirm", {"token": second, "new_password": NEW_PASSWORD})
    assert expired.status_code == 400
    assert expired.json()["code"] == "reset_token_invalid"
    assert identity.login(acct.email, PASSWORD).status_code == 200


def test_reset_requests_are_capped_per_account(identity: Identity) -> None:
    acct = identity.register()
    for _ in range(8):
        assert identity.post("/auth/password-reset", {"email": acct.email}).status_code == 202
    assert len(identity.events("identity.password_reset.requested", user_id=acct.user_id)) == 5


def test_email_verification(identity: Identity) -> None:
    acct = identity.register()
    sent = identity.event("identity.email_verification.requested", user_id=acct.user_id)
    assert sent.data.email == acct.email
    assert sent.data.tenant_name == "Acme Lattice"
    resend = identity.post("/auth/verify-email/resend", None, acct.headers)
    assert resend.status_code == 202
    newer = identity.event("identity.email_verification.requested", user_id=acct.user_id).data.token
    assert newer != sent.data.token
    stale = identity.post("/auth/verify-email", {"token": sent.data.token})
    assert stale.status_code == 400
    assert stale.json()["code"] == "verification_token_invalid"
    ok = identity.post("/auth/verify-email", {"token": newer})
    assert ok.status_code == 204, ok.text
    assert identity.get("/me", acct.headers).json()["user"]["email_verified"] is True
    assert identity.post("/auth/verify-email", {"token": newer}).status_code == 400
    assert identity.event("identity.email.verified", user_id=acct.user_id)
    already = identity.post("/auth/verify-email/resend", None, acct.headers)
    assert already.status_code == 409
    assert already.json()["code"] == "email_already_verified"
