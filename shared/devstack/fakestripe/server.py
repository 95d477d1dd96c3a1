"""localstripe's aiohttp app with fakestripe's routes and middlewares added to it."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import json
import logging
import os
import pickle
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe.errors import UserError

from shared.devstack.fakestripe import helpers
from shared.devstack.fakestripe.meters import Meter, MeterEvent
from shared.devstack.fakestripe.prices import Price
from shared.devstack.fakestripe.sessions import CheckoutSession, PortalSession

log = logging.getLogger("fakestripe")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDEMPOTENCY_TTL = 86_400.0
DELIVERY_OPTIONS = ("deliver_to", "webhook_secret", "webhook_headers")

app: web.Application = ls_server.app
get_post_data = ls_server.get_post_data
unflatten_data = ls_server.unflatten_data


def json_response(body: Any, status: int = 200) -> web.Response:
    """localstripe's JSON formatting, typed."""
    return web.json_response(
        body, status=status, dumps=lambda x: json.dumps(x, indent=2, sort_keys=True) + "\n"
    )


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def _params(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = dict(await get_post_data(request) or {})
    data.update(unflatten_data(request.query) or {})
    data.pop("expand", None)
    return data


def _create(cls: type[Any], with_base_url: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        data = await _params(request)
        if with_base_url:
            data["_base_url"] = _base_url(request)
        return json_response(cls._api_create(**data)._export())

    return handler


def _retrieve(cls: type[Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        expand = unflatten_data(request.query).get("expand")
        return json_response(cls._api_retrieve(request.match_info["id"])._export(expand=expand))

    return handler


def _update(cls: type[Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        data = await _params(request)
        return json_response(cls._api_update(request.match_info["id"], **data)._export())

    return handler


def _list(cls: type[Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        data = await _params(request)
        return json_response(cls._api_list_all(request.path, **data)._export())

    return handler


def _method(fn: Callable[..., Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        data = await _params(request)
        return json_response(fn(request.match_info["id"], **data)._export())

    return handler


def _helper(make: Callable[..., Callable[[], Any]], *names: str) -> Handler:
    """A test helper: `names` are the parameters of the change; the rest configure delivery."""

    async def handler(request: web.Request) -> web.StreamResponse:
        data = await _params(request)
        options: dict[str, Any] = {
            k: data.pop(k) for k in ("deliver_to", "webhook_secret", "webhook_headers") if k in data
        }
        unknown = set(data) - set(names)
        if unknown:
            raise UserError(400, f"Received unknown parameter: {', '.join(sorted(unknown))}")
        return json_response(await helpers.run_helper(make(request.match_info["id"], **data), options))

    return handler


# --- pages a browser would see ---------------------------------------------------------


def _error(exc: UserError) -> web.Response:
    return json_response(exc.body, status=exc.code)


def _page(title: str, body: str) -> web.Response:
    text = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}"
    return web.Response(text=text, content_type="text/html")


def _checkout_page(session_id: str) -> web.Response:
    session = CheckoutSession._api_retrieve(session_id)
    amount = f"{session.amount_total / 100:.2f} {session.currency.upper()}"
    return _page(
        "fakestripe Checkout",
        f"<p>Session <code>{html.escape(session.id)}</code> ({html.escape(session.status)}), {amount}.</p>"
        "<p>This fake takes no card. Complete the checkout as a paying customer would with "
        f"<code>catalytic dev checkout-complete {html.escape(session.id)}</code>.</p>",
    )


def _portal_page(session_id: str) -> web.Response:
    portal = PortalSession._api_retrieve(session_id)
    back = html.escape(portal.return_url or "")
    return _page(
        "fakestripe customer portal",
        f"<p>Customer <code>{html.escape(portal.customer)}</code>.</p><p><a href='{back}'>Return</a></p>",
    )


@web.middleware
async def pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hosted pages are public in Stripe, so they are answered before localstripe's auth check."""
    match = re.fullmatch(r"/(checkout|portal)/([\w]+)", request.path)
    if request.method != "GET" or match is None:
        return await handler(request)
    try:
        return _checkout_page(match[2]) if match[1] == "checkout" else _portal_page(match[2])
    except UserError as exc:
        return _error(exc)


# --- idempotency and subscription events -------------------------------------------------


class Replays:
    """Stripe's `Idempotency-Key`: the first response to a key is answered again for 24 hours."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[float, str, int, bytes]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key or not request.path.startswith("/v1/"):
            return await handler(request)
        scope = f"{request.headers.get('Authorization', '')}|{key}"
        fingerprint = hashlib.sha256(
            f"{request.path}?{request.query_string}|".encode() + await request.read()
        ).hexdigest()
        lock = self.locks.setdefault(scope, asyncio.Lock())
        async with lock:  # a concurrent retry waits for the first attempt's answer
            now = asyncio.get_running_loop().time()
            saved = self.saved.get(scope)
            if saved is not None and now - saved[0] < IDEMPOTENCY_TTL:
                if saved[1] != fingerprint:
                    return json_response(
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used with the "
                                "same parameters they were first used with.",
                            }
                        },
                        status=400,
                    )
                return web.Response(
                    body=saved[3],
                    status=saved[2],
                    content_type="application/json",
                    headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
                )
            try:
                response = await handler(request)
            except UserError as exc:
                response = _error(exc)
            if isinstance(response, web.Response) and response.status < 500 and response.status != 429:
                self.saved[scope] = (now, fingerprint, response.status, response.body or b"")  # type: ignore[assignment]
            return response


_SUBSCRIPTION_UPDATE = re.compile(r"^/v1/(?:customers/\w+/)?subscriptions/(sub_\w+)$")
_WATCHED = ("status", "cancel_at_period_end", "cancel_at", "plan", "quantity", "trial_end", "metadata")


@web.middleware
async def subscription_updates(request: web.Request, handler: Handler) -> web.StreamResponse:
    """localstripe updates subscriptions silently; Stripe sends customer.subscription.updated."""
    match = _SUBSCRIPTION_UPDATE.match(request.path)
    if request.method != "POST" or match is None:
        return await handler(request)
    try:
        before = ls.Subscription._api_retrieve(match[1])._export()
    except UserError:
        return await handler(request)
    response = await handler(request)
    if response.status == 200:
        after = ls.Subscription._api_retrieve(match[1])._export()
        previous = {k: before.get(k) for k in _WATCHED if before.get(k) != after.get(k)}
        if previous:
            helpers.subscription_updated(match[1], previous)
    return response


# --- assembly ----------------------------------------------------------------------------


def _routes() -> list[tuple[str, str, Handler]]:
    return [
        ("POST", "/v1/prices", _create(Price)),
        ("GET", "/v1/prices", _list(Price)),
        ("GET", "/v1/prices/{id}", _retrieve(Price)),
        ("POST", "/v1/prices/{id}", _update(Price)),
        ("POST", "/v1/checkout/sessions", _create(CheckoutSession, with_base_url=True)),
        ("GET", "/v1/checkout/sessions", _list(CheckoutSession)),
        ("GET", "/v1/checkout/sessions/{id}", _retrieve(CheckoutSession)),
        ("POST", "/v1/checkout/sessions/{id}/expire", _method(CheckoutSession._api_expire)),
        ("POST", "/v1/billing_portal/sessions", _create(PortalSession, with_base_url=True)),
        ("POST", "/v1/billing/meters", _create(Meter)),
        ("GET", "/v1/billing/meters", _list(Meter)),
        ("GET", "/v1/billing/meters/{id}", _retrieve(Meter)),
        ("GET", "/v1/billing/meters/{id}/event_summaries", _method(Meter._api_event_summaries)),
        ("POST", "/v1/billing/meter_events", _create(MeterEvent)),
        (
            "POST",
            "/v1/test_helpers/checkout/sessions/{id}/complete",
            _helper(helpers.complete_checkout, "payment_method"),
        ),
        ("POST", "/v1/test_helpers/subscriptions/{id}/renew", _helper(helpers.renew_subscription, "outcome")),
        ("POST", "/v1/test_helpers/subscriptions/{id}/trial_will_end", _helper(helpers.trial_will_end)),
    ]


def _persist_to(path: Path | None) -> None:
    """Keep the store in `path` (one file per stack) instead of localstripe's global /tmp file."""

    def dump(store: Any) -> None:
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    def load(store: Any) -> None:
        if path is None or not path.exists():
            return
        with open(path, "rb") as f:
            saved = pickle.load(f)  # noqa: S301 - the fake's own state file
        dict.clear(store)
        dict.update(store, saved)

    ls.Store.dump_to_disk = dump
    ls.Store.try_load_from_disk = load


def build(state_file: Path | None = None) -> web.Application:
    _persist_to(state_file)
    for method, path, handler in _routes():
        app.router.add_route(method, path, handler)
    app.middlewares.insert(0, pages)
    app.middlewares.append(web.middleware(Replays()))
    app.middlewares.append(subscription_updates)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fakestripe", description="localstripe plus prices, checkout, portal"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", type=Path, help="file that keeps the fake's objects across restarts")
    parser.add_argument("--from-scratch", action="store_true", help="ignore the saved state on start")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    application = build(args.state)
    if not args.from_scratch:
        ls.store.try_load_from_disk()
    web.run_app(application, host=args.host, port=args.port, access_log=logging.getLogger("aiohttp.access"))
