"""Bad input gets a clear 4xx problem+json with a stable code, and writes nothing."""

from __future__ import annotations

import pytest

from tests.identity.conftest import PASSWORD, Identity, unique_email
from tests.support import anonymous

JSON = {"Content-Type": "application/json"}


def _counts(identity: Identity) -> tuple[int, int, int]:
    row = identity.sql(
        "SELECT (SELECT count(*) FROM identity.tenants) AS t, (SELECT count(*) FROM identity.users) AS u,"
        " (SELECT coalesce(max(seq), 0) FROM identity.outbox) AS o"
    )[0]
    return row["t"], row["u"], row["o"]


@pytest.mark.parametrize(
    ("path", "raw", "status", "code"),
    [
        ("/auth/register", b'{"email": "a@example.com", "password": ', 400, "malformed_body"),
        ("/auth/register", b"not json at all", 400, "malformed_body"),
        ("/auth/login", b'{"email": "a@example.com"', 400, "malformed_body"),
        ("/auth/register", b"[]", 422, "invalid_input"),
        ("/auth/register", b'{"email": 5, "password": "x", "company_name": "c"}', 422, "invalid_input"),
        (
            "/auth/register",
            b'{"email": "a@example.com", "password": ["x"], "company_name": "c"}',
            422,
            "invalid_input",
        ),
        (
            "/auth/register",
            b'{"email": "a@example.com", "password": "Velvet-Orbit-Lantern-42"}',
            422,
            "invalid_input",
        ),
        (
            "/auth/login",
            b'{"email": "a@example.com", "password": "x", "remember": true}',
            422,
            "invalid_input",
        ),
        ("/auth/refresh", b'{"refresh_token": "short"}', 422, "invalid_input"),
        ("/auth/refresh", b'{"refresh_token": null}', 422, "invalid_input"),
    ],
)
def test_malformed_or_mistyped_bodies(
    identity: Identity, path: str, raw: bytes, status: int, code: str
) -> None:
    before = _counts(identity)
    resp = identity.http.post(path, content=raw, headers={**anonymous("identity"), **JSON})
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code
    assert _counts(identity) == before


def test_ten_megabyte_body_is_refused_unread(identity: Identity) -> None:
    before = _counts(identity)
    huge = (
        b'{"email": "big@example.com", "password": "' + b"x" * (10 * 1024 * 1024) + b'", "company_name": "c"}'
    )
    resp = identity.http.post("/auth/register", content=huge, headers={**anonymous("identity"), **JSON})
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload_too_large"
    assert _counts(identity) == before


@pytest.mark.parametrize(
    "email",
    [
        "jürgen@example.com",
        "user@exämple.com",
        "пользователь@example.com",
        "\uff41\uff44\uff4d\uff49\uff4e@example.com",  # full-width letters that NFKC would turn into "admin"
        "admin\u200b@example.com",  # zero-width space
        "not-an-email",
        "two@@example.com",
        "dot.@example.com",
        "a@localhost",
        "a" * 65 + "@example.com",
        "",
    ],
)
def test_unicode_and_invalid_emails(identity: Identity, email: str) -> None:
    before = _counts(identity)
    body = {"email": email, "password": PASSWORD, "company_name": "Unicode Co"}
    resp = identity.post("/auth/register", body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] in ("invalid_email", "invalid_input")
    assert _counts(identity) == before
    for path, payload in (
        ("/auth/login", {"email": email, "password": PASSWORD}),
        ("/auth/password-reset", {"email": email}),
    ):
        other = identity.post(path, payload)
        assert other.status_code == 422, (path, other.text)
    assert _counts(identity) == before


def test_control_characters_and_blank_names(identity: Identity) -> None:
    before = _counts(identity)
    for company in ("Nul\x00Corp", "Bell\x07", "   ", "x" * 201):
        body = {"email": unique_email(), "password": PASSWORD, "company_name": company}
        resp = identity.post("/auth/register", body)
        assert resp.status_code == 422, (company, resp.text)
        assert resp.json()["code"] == "invalid_input"
    assert _counts(identity) == before


def test_unicode_passwords_are_normalized(identity: Identity) -> None:
    # "Å" typed as one code point or as A + combining ring is the same password (NFKC).
    composed, decomposed = "Fjord-Ångström-2024!", "Fjord-A\u030angstro\u0308m-2024!"
    email = unique_email("nfkc")
    made = identity.post("/auth/register", {"email": email, "password": composed, "company_name": "Nordic"})
    assert made.status_code == 201, made.text
    assert identity.login(email, decomposed).status_code == 200
