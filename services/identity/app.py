"""Composition root of the identity service: HTTP app and worker."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from services.identity.api import ROUTES
from services.identity.consumers import handlers
from services.identity.maintenance import run as maintenance
from services.identity.service.common import Identity
from services.identity.service.passwords import PasswordHasher
from services.identity.service.throttle import LoginThrottle
from services.identity.settings import IdentitySettings, get_settings
from shared.auth.tokens import TokenSigner
from shared.bus import ConsumerConfig
from shared.db import Pool
from shared.events import BILLING_STREAM, USAGE_STREAM
from shared.http import create_app
from shared.http.app import Resources
from shared.http.caller import CALLER
from shared.http.deps import TX
from shared.platform import service
from shared.settings import SettingsError
from shared.worker import ConsumerSpec, WorkerSpec

INFO = service("identity")
MAX_BODY_BYTES = 64 * 1024  # every identity body is small; a bigger one is refused unread


def signer(settings: IdentitySettings) -> TokenSigner:
    # Only the API signs; the worker runs without the private key.
    if not settings.jwt_private_key:
        raise SettingsError(
            INFO.name, ["JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) is required: it signs tokens"]
        )
    marker = "-----END PUBLIC KEY-----"
    previous = tuple(
        part.strip() + "\n" + marker + "\n"
        for part in settings.jwt_previous_public_keys.split(marker)
        if part.strip()
    )
    return TokenSigner(
        settings.jwt_private_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        extra_public_pems=previous,
    )


def app() -> Litestar:
    settings = get_settings()
    token_signer = signer(settings)  # a bad key fails here, at startup, not at the first login

    async def startup(resources: Resources) -> None:
        hasher = PasswordHasher(
            settings.password_hash_profile, settings.hash_concurrency, settings.password_hash_queue
        )
        await hasher.start()
        resources.extra["identity"] = Identity(
            settings=settings,
            redis=resources.redis,
            signer=token_signer,
            hasher=hasher,
            throttle=LoginThrottle(resources.redis, settings),
        )

    async def shutdown(resources: Resources) -> None:
        identity = resources.extra.get("identity")
        if isinstance(identity, Identity):
            identity.hasher.close()

    return create_app(
        service=INFO.name,
        settings=settings,
        route_handlers=ROUTES,
        schema=INFO.schema,
        startup=startup,
        shutdown=shutdown,
        dependencies={
            **TX,
            **CALLER,
            "ctx": Provide(_identity, sync_to_thread=False),
            "pool": Provide(_pool, sync_to_thread=False),
        },
        max_body_bytes=MAX_BODY_BYTES,
    )


def _identity(state: State) -> Identity:
    identity: Identity = state.resources.extra["identity"]
    return identity


def _pool(state: State) -> Pool:
    pool: Pool = state.resources.pool
    return pool


def worker() -> WorkerSpec:
    return WorkerSpec(
        service=INFO.name,
        settings=get_settings(),
        schema=INFO.schema,
        consumers=[
            ConsumerSpec(ConsumerConfig(group="identity", streams=(BILLING_STREAM, USAGE_STREAM)), handlers)
        ],
        extra_tasks=[maintenance],
    )
