"""schemathesis against the gateway's merged OpenAPI document, signed in as a real tenant's owner:
no generated request (valid or not) gets a 5xx, and every answer matches its documented schema
and content type.

The schema exists only once the platform runs, so operations are fuzzed from inside one test
(hypothesis per operation) rather than collected by the pytest plugin at import time.
Examples per operation: a few in `make test`, many more with CATALYTIC_LONG=1."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.gateway.support import bearer, mint, random_ip
from tests.security.conftest import register

EXAMPLES = 200 if os.environ.get("CATALYTIC_LONG") == "1" else 12
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_no_server_errors_and_answers_match_the_spec(gateway: str) -> None:
    owner = register(gateway, "fuzz")
    doc = httpx.get(f"{gateway}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    seen: Counter[str] = Counter()
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: Any) -> None:
            # A fresh token per request (as identity issues them): a generated logout revokes only it.
            token = mint(tenant=owner.tenant_id, user=owner.user_id, plan="enterprise")
            headers = {**bearer(token), "X-Forwarded-For": random_ip()}
            response = case.call(base_url=gateway, headers=headers, timeout=30)
            seen[str(response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, BaseExceptionGroup) as exc:  # collected, reported together below
                failures.append(f"{case.operation.label}: {type(exc).__name__}: {str(exc)[:300]}")

        fuzz()
    total = sum(seen.values())
    print(
        f"\n[security] schemathesis: {total} requests, statuses {dict(sorted(seen.items()))},"
        f" {len(failures)} failures"
    )
    assert total > 0
    assert not failures, "\n".join(failures[:20])
