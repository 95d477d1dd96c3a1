"""Throwaway local peers for `make run` and `make test`: Postgres, Redis, an SMTP catcher, localstripe."""

from __future__ import annotations

from shared.devstack.procs import DevStackError
from shared.devstack.stack import DevEnv, DevStack, Ports

__all__ = ["DevEnv", "DevStack", "DevStackError", "Ports"]
