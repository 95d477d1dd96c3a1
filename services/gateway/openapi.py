"""One OpenAPI document for the whole public API, merged from every upstream's own.

Each upstream's `/schema/openapi.json` is fetched in the background from startup on (services
may come up after the gateway), filtered to the paths the gateway routes to it (internal routes
stay hidden), and merged; a schema name two services both use with different content is
renamed for the second (`<Service><Name>`) and its references rewritten.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.gateway.routes import Route

log = logging.getLogger("catalytic.gateway.openapi")

SCHEMA_PATH = "/schema/openapi.json"
_REF = "#/components/schemas/"


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    prefixes: tuple[str, ...]
    strip_prefix: bool


def sources_of(routes: list[Route]) -> list[Source]:
    grouped: dict[str, list[Route]] = {}
    for route in routes:
        grouped.setdefault(route.upstream, []).append(route)
    return [
        Source(name, rs[0].base_url + SCHEMA_PATH, tuple(r.prefix for r in rs), rs[0].strip_prefix)
        for name, rs in grouped.items()
    ]


def _routed(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
                name = value[len(_REF) :]
                out[key] = _REF + renames.get(name, name)
            else:
                out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, renames) for v in node]
    return node


def merge(docs: dict[str, dict[str, Any]], sources: list[Source], title: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    tags: dict[str, dict[str, Any]] = {}
    for source in sources:
        doc = docs.get(source.name)
        if doc is None:
            continue
        own: dict[str, Any] = doc.get("components", {}).get("schemas", {})
        renames = {
            name: f"{source.name.title().replace('-', '')}{name}"
            for name, schema in own.items()
            if name in schemas and schemas[name] != schema
        }
        doc = _rename_refs(doc, renames) if renames else doc
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        for path, item in doc.get("paths", {}).items():
            public = source.prefixes[0] + path if source.strip_prefix else path
            if source.strip_prefix or _routed(path, source.prefixes):
                paths[public] = item
        for tag in doc.get("tags", []):
            if isinstance(tag, dict) and "name" in tag:
                tags.setdefault(tag["name"], tag)
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or API key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    if tags:
        merged["tags"] = list(tags.values())
    return merged


class OpenApi:
    def __init__(self, http: aiohttp.ClientSession, sources: list[Source], title: str = "catalytic API"):
        self._http = http
        self.sources = sources
        self.title = title
        self._docs: dict[str, dict[str, Any]] = {}
        self._merged: dict[str, Any] | None = None

    @property
    def missing(self) -> list[str]:
        return [s.name for s in self.sources if s.name not in self._docs]

    def document(self) -> dict[str, Any]:
        if self._merged is None:
            self._merged = merge(self._docs, self.sources, self.title)
        return self._merged

    async def _fetch(self, source: Source) -> None:
        try:
            async with self._http.get(source.url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status != 200:
                    return
                doc = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("OpenAPI of %s not available yet: %s", source.name, exc)
            return
        if isinstance(doc, dict):
            self._docs[source.name] = copy.deepcopy(doc)
            self._merged = None

    async def run(self, stop: asyncio.Event, retry: float = 2.0, refresh: float = 300.0) -> None:
        """Fetch every source; retry the missing ones, refresh all now and then (deploys change them)."""
        since_refresh = 0.0
        while not stop.is_set():
            pending = (
                self.sources
                if since_refresh >= refresh
                else [s for s in self.sources if s.name not in self._docs]
            )
            if since_refresh >= refresh:
                since_refresh = 0.0
            await asyncio.gather(*(self._fetch(s) for s in pending))
            wait = retry if self.missing else refresh
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                since_refresh += wait


DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>catalytic API</title>
</head>
<body>
  <script id="api-reference" data-url="/openapi.json"></script>
  <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
</body>
</html>
"""
