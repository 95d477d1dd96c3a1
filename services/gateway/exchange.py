"""Per-request state of the proxy, and the request headers it acts on."""

from __future__ import annotations

from services.gateway.edge import HOP_BY_HOP, Header
from services.gateway.principal import ANONYMOUS, Principal
from services.gateway.routes import Route

# Request headers the gateway reads or replaces instead of forwarding as they came.
AUTH, APIKEY, ORIGIN, XFF, XFPROTO, RID, CLEN, TE, HOST, ACRM, ACRH, DROP = range(12)
SPECIAL: dict[bytes, int] = {
    **{name: DROP for name in HOP_BY_HOP},  # first: the entries below override some of these
    b"authorization": AUTH,
    b"x-api-key": APIKEY,
    b"origin": ORIGIN,
    b"x-forwarded-for": XFF,
    b"x-forwarded-proto": XFPROTO,
    b"x-request-id": RID,
    b"content-length": CLEN,
    b"transfer-encoding": TE,
    b"host": HOST,
    b"access-control-request-method": ACRM,
    b"access-control-request-headers": ACRH,
    b"x-forwarded-host": DROP,
    b"forwarded": DROP,
    b"x-real-ip": DROP,
    b"expect": DROP,  # the server in front of us already answered 100-continue
}


class Exchange:
    """Per-request state the error path and the usage record need."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "headers",
        "metered",
        "principal",
        "route",
        "started",
        "status",
    )

    def __init__(self, headers: list[Header]) -> None:
        self.headers = headers  # gateway headers every response of this request carries
        self.status = 0
        self.started = False  # response start sent
        self.principal: Principal = ANONYMOUS
        self.route: Route | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.metered = False  # counted toward the monthly quota


class Incoming:
    """The request headers the gateway acts on, and the ones it forwards."""

    __slots__ = (
        "acrh",
        "acrm",
        "api_key",
        "auth",
        "chunked",
        "content_length",
        "forward",
        "forwarded_for",
        "forwarded_proto",
        "host",
        "origin",
        "request_id",
    )

    def __init__(self) -> None:
        self.auth: bytes | None = None
        self.api_key: bytes | None = None
        self.origin: bytes | None = None
        self.forwarded_for: bytes | None = None
        self.forwarded_proto: bytes | None = None
        self.request_id: bytes | None = None
        self.content_length: bytes | None = None
        self.chunked = False
        self.host: bytes | None = None
        self.acrm: bytes | None = None
        self.acrh: bytes | None = None
        self.forward: list[Header] = []


def read_headers(raw: list[tuple[bytes, bytes]]) -> Incoming:
    req = Incoming()
    forward = req.forward
    for name, value in raw:
        kind = SPECIAL.get(name)
        if kind is None:
            if not name.startswith(b"x-catalytic-"):  # never let a client speak for the gateway
                forward.append((name, value))
        elif kind == AUTH:
            req.auth = value
        elif kind == APIKEY:
            req.api_key = value
        elif kind == ORIGIN:
            req.origin = value
        elif kind == XFF:
            req.forwarded_for = value
        elif kind == XFPROTO:
            req.forwarded_proto = value
        elif kind == RID:
            req.request_id = value
        elif kind == CLEN:
            req.content_length = value
        elif kind == TE:
            req.chunked = b"chunked" in value.lower()
        elif kind == HOST:
            req.host = value
        elif kind == ACRM:
            req.acrm = value
        elif kind == ACRH:
            req.acrh = value
    return req
