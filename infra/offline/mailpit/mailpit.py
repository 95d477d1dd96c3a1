"""A small stand-in for Mailpit: an SMTP catcher with Mailpit's HTTP API subset and a plain web UI.

    mailpit            serve SMTP on :1025 and HTTP on :8025 (MP_SMTP_BIND_ADDR, MP_UI_BIND_ADDR)
    mailpit readyz     exit 0 when the HTTP side answers /readyz (the official image's health check)

HTTP (as Mailpit's API v1, newest message first):
    GET    /api/v1/messages?start=&limit=        summaries
    GET    /api/v1/search?query=&start=&limit=   summaries matching `to:`, `from:`, `subject:` or words
    GET    /api/v1/message/{id|latest}           one message: addresses, Subject, Text, HTML, …
    GET    /api/v1/message/{id}/headers          headers, each a list of values
    GET    /api/v1/message/{id}/raw              the source as received
    DELETE /api/v1/messages                      all, or the IDs in {"IDs": [...]}
    GET    /livez /readyz                        200
    GET    /                                     the web UI (a list; each message readable)
Messages live in memory, like Mailpit without a database file; MP_MAX_MESSAGES caps them.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import json
import os
import secrets
import shlex
import signal
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _bind(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "0.0.0.0", int(port or default_port)


def _addresses(values: list[str]) -> list[dict[str, str]]:
    return [{"Name": name, "Address": addr} for name, addr in email.utils.getaddresses(values) if addr]


class Message:
    def __init__(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        self.raw = raw
        self.id = "".join(secrets.choice(_ALPHABET) for _ in range(22))
        self.created = datetime.now(UTC)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.msg = parsed
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.text = self._body("plain")
        self.html = self._body("html")

    def _body(self, subtype: str) -> str:
        part = self.msg.get_body(preferencelist=(subtype,))
        if part is None or part.get_content_subtype() != subtype:
            return ""
        content = part.get_content()
        return content if isinstance(content, str) else ""

    def _header(self, name: str) -> str:
        return str(self.msg.get(name, ""))

    def _list(self, name: str) -> list[dict[str, str]]:
        return _addresses([str(v) for v in self.msg.get_all(name, [])])

    def summary(self) -> dict[str, Any]:
        sender = self._list("From")
        to = self._list("To") or [{"Name": "", "Address": a} for a in self.rcpt_tos]
        return {
            "ID": self.id,
            "MessageID": self._header("Message-ID").strip("<>"),
            "Read": False,
            "From": sender[0] if sender else {"Name": "", "Address": self.mail_from},
            "To": to,
            "Cc": self._list("Cc"),
            "Bcc": [],
            "ReplyTo": self._list("Reply-To"),
            "Subject": self._header("Subject"),
            "Created": self.created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "Tags": [],
            "Size": len(self.raw),
            "Attachments": sum(1 for _ in self.msg.iter_attachments()),
            "Snippet": " ".join((self.text or self.html).split())[:250],
        }

    def detail(self) -> dict[str, Any]:
        out = self.summary()
        for key in ("Read", "Created", "Snippet"):
            out.pop(key)
        out.update(
            {
                "ReturnPath": self.mail_from,
                "Date": self._header("Date"),
                "Text": self.text,
                "HTML": self.html,
                "Inline": [],
                "Attachments": [
                    {"FileName": a.get_filename() or "", "ContentType": a.get_content_type()}
                    for a in self.msg.iter_attachments()
                ],
            }
        )
        return out

    def headers(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in self.msg.items():
            found.setdefault(name, []).append(str(value))
        return found

    def matches(self, query: str) -> bool:
        fields = {
            "to": " ".join(a["Address"] + " " + a["Name"] for a in self.summary()["To"] + self._list("Cc")),
            "from": " ".join(a["Address"] + " " + a["Name"] for a in self._list("From")) + self.mail_from,
            "subject": self._header("Subject"),
        }
        everything = " ".join([*fields.values(), self.text, self.html]).lower()
        for term in shlex.split(query):
            key, sep, value = term.partition(":")
            if sep and key.lower() in fields:
                if value.lower() not in fields[key.lower()].lower():
                    return False
            elif term.lower() not in everything:
                return False
        return True


class Mailbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.messages: list[Message] = []  # newest first

    def add(self, message: Message) -> None:
        with self.lock:
            self.messages.insert(0, message)
            del self.messages[self.limit :]

    def find(self, ident: str) -> Message | None:
        with self.lock:
            if ident == "latest":
                return self.messages[0] if self.messages else None
            return next((m for m in self.messages if m.id == ident), None)

    def listing(self, query: str, start: int, limit: int) -> dict[str, Any]:
        with self.lock:
            chosen = [m for m in self.messages if not query or m.matches(query)]
            total = len(self.messages)
        page = chosen[start : start + limit]
        return {
            "total": total,
            "unread": total,
            "count": len(page),
            "messages_count": len(chosen),
            "start": start,
            "tags": [],
            "messages": [m.summary() for m in page],
        }

    def delete(self, ids: list[str] | None) -> None:
        with self.lock:
            if ids is None:
                self.messages.clear()
            else:
                self.messages = [m for m in self.messages if m.id not in set(ids)]


class SmtpHandler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        self.box.add(Message(raw, str(envelope.mail_from or ""), list(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: queued"


def _accept_any(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)  # MP_SMTP_AUTH_ACCEPT_ANY: any credentials are fine


def make_handler(box: Mailbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mailpit-standin"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, data: Any, status: int = 200) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _text(self, text: str, status: int = 200) -> None:
            self._send(status, text.encode(), "text/plain; charset=utf-8")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            if url.path in ("/livez", "/readyz"):
                self._text("ok")
            elif parts[:3] in (["api", "v1", "messages"], ["api", "v1", "search"]) and len(parts) == 3:
                start, limit = int(query.get("start", 0)), int(query.get("limit", 50))
                self._json(box.listing(query.get("query", ""), start, limit))
            elif parts[:3] == ["api", "v1", "message"] and len(parts) in (4, 5):
                found = box.find(parts[3])
                if found is None:
                    self._text("message not found", 404)
                elif len(parts) == 4:
                    self._json(found.detail())
                elif parts[4] == "raw":
                    self._send(200, found.raw, "text/plain; charset=utf-8")
                elif parts[4] == "headers":
                    self._json(found.headers())
                else:
                    self._text("not found", 404)
            elif parts[:1] == ["view"] and len(parts) == 2 and (found := box.find(parts[1])):
                self._send(200, _page_message(found).encode(), "text/html; charset=utf-8")
            elif not parts:
                self._send(200, _page_list(box).encode(), "text/html; charset=utf-8")
            else:
                self._text("not found", 404)

        def do_DELETE(self) -> None:
            if urlsplit(self.path).path.rstrip("/") != "/api/v1/messages":
                self._text("not found", 404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            ids = body.get("IDs") if isinstance(body, dict) else None
            box.delete(list(ids) if ids else None)
            self._text("ok")

    return Handler


def _page_list(box: Mailbox) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s['Created'])}</td><td>{html.escape(s['From']['Address'])}</td>"
        f"<td>{html.escape(', '.join(a['Address'] for a in s['To']))}</td>"
        f"<td><a href='/view/{s['ID']}'>{html.escape(s['Subject'] or '(no subject)')}</a></td></tr>"
        for s in box.listing("", 0, 500)["messages"]
    )
    return (
        "<!doctype html><meta charset=utf-8><title>Mail</title><h1>Mail caught</h1>"
        "<table border=1 cellpadding=4><tr><th>received</th><th>from</th><th>to</th><th>subject</th></tr>"
        f"{rows}</table>"
    )


def _page_message(m: Message) -> str:
    d = m.detail()
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(d['Subject'])}</title>"
        f"<p><a href='/'>all mail</a> · <a href='/api/v1/message/{m.id}/raw'>source</a></p>"
        f"<h1>{html.escape(d['Subject'])}</h1><p>from {html.escape(d['From']['Address'])} to "
        f"{html.escape(', '.join(a['Address'] for a in d['To']))}</p>"
        f"<pre>{html.escape(d['Text'] or d['HTML'])}</pre>"
    )


def readyz() -> int:
    _, port = _bind(os.environ.get("MP_UI_BIND_ADDR", ""), 8025)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return 0 if resp.status == 200 else 1
    except OSError:
        return 1


def serve() -> None:
    from aiosmtpd.controller import Controller

    box = Mailbox(int(os.environ.get("MP_MAX_MESSAGES", "500")))
    smtp_host, smtp_port = _bind(os.environ.get("MP_SMTP_BIND_ADDR", ""), 1025)
    ui_host, ui_port = _bind(os.environ.get("MP_UI_BIND_ADDR", ""), 8025)
    controller = Controller(
        SmtpHandler(box),
        hostname=smtp_host,
        port=smtp_port,
        authenticator=_accept_any,
        auth_require_tls=False,
    )
    # PID 1 gets no default SIGTERM action: stop on it explicitly (docker stop).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    controller.start()
    httpd = ThreadingHTTPServer((ui_host, ui_port), make_handler(box))
    print(f"mailpit stand-in: smtp {smtp_host}:{smtp_port}, http {ui_host}:{ui_port}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        controller.stop()


def main(argv: list[str]) -> int:
    if argv[:1] == ["readyz"]:
        return readyz()
    if argv:
        print(f"unsupported: {' '.join(argv)}", file=sys.stderr)
        return 2
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
