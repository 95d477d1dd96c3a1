"""The gateway's own pages: the merged OpenAPI document and the docs UI."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get
from litestar.datastructures import State

from services.gateway.openapi import DOCS_HTML, OpenApi


@get("/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_document(state: State) -> dict[str, Any]:
    merger: OpenApi = state.openapi
    return merger.document()


@get("/docs", include_in_schema=False, sync_to_thread=False, media_type=MediaType.HTML)
def docs() -> Response[str]:
    return Response(DOCS_HTML, media_type=MediaType.HTML)


ROUTES = [openapi_document, docs]
