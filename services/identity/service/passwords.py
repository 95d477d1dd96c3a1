"""Passwords: argon2id hashing off the event loop with a concurrency cap, and the strength rules."""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.identity import errors
from services.identity.settings import HashProfile

R = TypeVar("R")

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
PROFILES: dict[str, argon2.Parameters] = {
    "owasp": argon2.Parameters(
        type=argon2.Type.ID,
        version=19,
        salt_len=16,
        hash_len=32,
        time_cost=2,
        memory_cost=19_456,
        parallelism=1,
    ),
    # Cheap, for fast test suites on slow machines; production refuses it (settings.py).
    "test": argon2.Parameters(
        type=argon2.Type.ID,
        version=19,
        salt_len=16,
        hash_len=32,
        time_cost=1,
        memory_cost=1_024,
        parallelism=1,
    ),
}
MIN_LENGTH = 10
MAX_LENGTH = 128


class PasswordHasher:
    """argon2 releases the GIL, so threads hash in parallel; the semaphore caps CPU and memory
    (19 MiB each) and a bounded queue turns a flood into fast 503s instead of a growing backlog."""

    def __init__(self, profile: HashProfile, concurrency: int, queue_limit: int) -> None:
        self._argon = argon2.PasswordHasher.from_parameters(PROFILES[profile])
        self._threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(concurrency)
        self._limit = concurrency + queue_limit
        self._in_flight = 0
        self._dummy = ""

    async def start(self) -> None:
        # Unknown emails are checked against this, so they cost the same as known ones.
        self._dummy = await self.hash(secrets.token_urlsafe(24))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._in_flight >= self._limit:
            raise errors.PasswordHashBusy(headers={"Retry-After": "1"})
        self._in_flight += 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)
        finally:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        return await self._run(self._argon.hash, normalize(password))

    async def verify(self, stored: str | None, password: str) -> bool:
        """Always does one full argon2 computation, whether or not `stored` exists."""
        return await self._run(self._verify_sync, stored or self._dummy, normalize(password), stored is None)

    def _verify_sync(self, stored: str, password: str, dummy: bool) -> bool:
        try:
            ok = self._argon.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and not dummy

    def needs_rehash(self, stored: str) -> bool:
        return self._argon.check_needs_rehash(stored)


def normalize(password: str) -> str:
    # NIST SP 800-63B: the same password typed on another keyboard/OS must match.
    return unicodedata.normalize("NFKC", password)


_COMMON = frozenset(
    [
        "1234567890",
        "0123456789",
        "0987654321",
        "1111111111",
        "0000000000",
        "123456789a",
        "a123456789",
        "1234567890a",
        "12345678910",
        "123123123123",
        "1q2w3e4r5t",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "asdfghjkl1",
        "zxcvbnm123",
        "password12",
        "password123",
        "password1234",
        "password1!",
        "passw0rd12",
        "passw0rd123",
        "p@ssw0rd123",
        "p@ssword123",
        "iloveyou12",
        "iloveyou123",
        "welcome123",
        "welcome1234",
        "letmein123",
        "changeme123",
        "administrator",
        "admin12345",
        "admin123456",
        "abcdefghij",
        "abc1234567",
        "abcd123456",
        "football123",
        "baseball123",
        "superman123",
        "trustno1234",
        "monkey12345",
        "dragon12345",
        "sunshine123",
        "princess123",
        "qwerty1234567",
        "123qweasdzxc",
    ]
)


def check_strength(password: str, *, email: str, context: tuple[str, ...] = ()) -> None:
    """Raise the error naming the first rule the password breaks (NIST-style: length and
    blocklist, no composition rules)."""
    text = normalize(password)
    if len(text) < MIN_LENGTH:
        raise errors.PasswordTooShort(f"password must be at least {MIN_LENGTH} characters")
    if len(text) > MAX_LENGTH:
        raise errors.PasswordTooLong(f"password must be at most {MAX_LENGTH} characters")
    lowered = text.casefold()
    if lowered in _COMMON or len(set(lowered)) < 4:
        raise errors.PasswordTooCommon("password is too common or too simple; choose a less guessable one")
    local = email.split("@", 1)[0]
    personal = [w.casefold() for w in (email, local, *context) if w and len(w) >= 4]
    if any(word in lowered for word in personal):
        raise errors.PasswordContainsPersonalInfo("password must not contain your email or company name")
