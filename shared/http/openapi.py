"""The OpenAPI document says what errors really are: `application/problem+json`, one schema."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import Components, OpenAPIType, Reference, Schema

from shared.http.problems import PROBLEM_JSON

_STRING = Schema(type=OpenAPIType.STRING)
PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="RFC 9457 problem details; `code` is stable and meant for programs.",
    required=["type", "title", "status", "code"],
    properties={
        "type": _STRING,
        "title": _STRING,
        "status": Schema(type=OpenAPIType.INTEGER),
        "code": _STRING,
        "detail": _STRING,
        "instance": _STRING,
        "request_id": _STRING,
        "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
    },
)


def document_problems(app: Litestar) -> None:
    """Litestar documents error answers as `application/json` with its own body; ours differ."""
    if app.openapi_config is None:
        return
    doc = app.openapi_schema
    doc.components = doc.components or Components()
    doc.components.schemas = {**(doc.components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    ref = Reference(ref="#/components/schemas/Problem")
    for item in (doc.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            for status, response in (operation.responses or {} if operation else {}).items():
                if int(status) >= 400 and not isinstance(response, Reference) and response.content:
                    media = next(iter(response.content.values()))
                    media.schema = ref
                    response.content = {PROBLEM_JSON: media}
