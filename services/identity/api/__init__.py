"""HTTP controllers of the identity service."""

from __future__ import annotations

from typing import Any

from services.identity.api.account import MeController, TenantController, UsersController
from services.identity.api.auth import AuthController
from services.identity.api.keys import ApiKeysController, InternalController, jwks

ROUTES: list[Any] = [
    AuthController,
    MeController,
    TenantController,
    UsersController,
    ApiKeysController,
    InternalController,
    jwks,
]
