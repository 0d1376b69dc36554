"""Helpers shared by the Python suite: recipients, Twilio's webhook signature, and a local
stand-in for Twilio's Messages API (Python's http.server on 127.0.0.1, in a thread).

The stand-in implements what sms-twilio calls (sms-twilio/src/provider.rs, model.rs):
  POST /2010-04-01/Accounts/{sid}/Messages.json   create (201, a Message resource)
  GET  /2010-04-01/Accounts/{sid}/Messages.json   list, by To, newest first (reconciliation)
  GET  /2010-04-01/Accounts/{sid}/Balance.json    the balance, checked before a run
and records every request so a test can assert what the library sent.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sms_text as sms

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "tok-" + "5ecret" * 5  # long and unmistakable: searched for in every text
FROM_NUMBER = "+15005550006"


def client_kind(methods: str = "Text") -> "sms.RecipientKind":
    return sms.RecipientKind.CLIENT(permitted_marketing_methods=methods)


def recipient(record_id, mobile, kind=None, first_name="Ann", last_name="Lee", **fields):
    return sms.Recipient(
        record_id=str(record_id),
        kind=kind if kind is not None else client_kind(),
        first_name=first_name,
        last_name=last_name,
        mobile=mobile,
        fields={k: str(v) for k, v in fields.items()},
    )


def numbers(count: int, start: int = 100) -> list[str]:
    """Distinct valid US mobile numbers (Washington DC, 202-555-01xx... widened)."""
    return [f"+1202555{n:04d}" for n in range(start, start + count)]


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 over the URL followed by each POST parameter's name and
    value, names sorted, base64-encoded (Twilio's "Webhooks security" page)."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def wait_until(predicate, timeout: float = 5.0, step: float = 0.01):
    """Polls `predicate` until true or the deadline; returns its last value (the caller
    asserts it: the wait itself asserts nothing)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def rfc2822(ts: float) -> str:
    return email.utils.format_datetime(
        datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    )


class FakeTwilio:
    """Twilio's Messages API on 127.0.0.1, port chosen by the OS."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # every request: method, path, query, auth, form
        self.messages: list[dict] = []  # created Message resources, oldest first
        self.balance = "25.00"
        # When true, each create stores the message and then answers 500, as if Twilio's
        # answer were lost after it created the message: the send is in doubt.
        self.lose_create_answers = False
        # Called (outside the lock) after each create, with the number of creates so far.
        self.on_create = None
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                stand_in._handle(self, "POST")

            def do_GET(self):
                stand_in._handle(self, "GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def provider(self, **overrides) -> "sms.ProviderConfig":
        args = dict(
            account_sid=self.account_sid,
            auth_token=self.auth_token,
            from_number=FROM_NUMBER,
            messaging_service_sid=None,
            base_url=self.base_url,
        )
        args.update(overrides)
        return sms.ProviderConfig.TWILIO(**args)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # What the tests read.
    def creates(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST"]

    def creates_per_number(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.creates():
            to = r["form"].get("To", "")
            counts[to] = counts.get(to, 0) + 1
        return counts

    def gets(self, suffix: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "GET" and r["path"].endswith(suffix)]

    # The server side.
    def _answer(self, handler, status: int, body: dict):
        data = json.dumps(body).encode()
        handler.send_response(status)  # also sends the Date header (Twilio's clock)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler, method: str):
        parsed = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        request = {
            "method": method,
            "path": parsed.path,
            "query": query,
            "auth": handler.headers.get("Authorization"),
            "content_type": handler.headers.get("Content-Type"),
            "raw": raw,
            "form": form,
        }
        with self.lock:
            self.requests.append(request)
        account = f"/2010-04-01/Accounts/{self.account_sid}"
        expected_auth = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if request["auth"] != expected_auth:
            self._answer(
                handler,
                401,
                {"code": 20003, "message": "Authenticate", "status": 401},
            )
            return
        if method == "POST" and parsed.path == f"{account}/Messages.json":
            self._create(handler, form)
        elif method == "GET" and parsed.path == f"{account}/Messages.json":
            to = query.get("To")
            with self.lock:
                found = [m for m in reversed(self.messages) if to is None or m["to"] == to]
            self._answer(
                handler,
                200,
                {
                    "messages": found,
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": int(query.get("PageSize", 50)),
                },
            )
        elif method == "GET" and parsed.path == f"{account}/Balance.json":
            self._answer(
                handler,
                200,
                {"account_sid": self.account_sid, "balance": self.balance, "currency": "USD"},
            )
        else:
            self._answer(
                handler,
                404,
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
            )

    def _create(self, handler, form: dict):
        body = form.get("Body", "")
        # Twilio's count for the plain ASCII bodies the tests send (not the library's: the
        # units the library reports must come from this answer).
        segments = 1 if len(body) <= 160 else -(-len(body) // 153)
        now = time.time()
        message = {
            "sid": "SM" + secrets.token_hex(16),
            "account_sid": self.account_sid,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "from": form.get("From"),
            "to": form.get("To"),
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(segments),
            "num_media": "0",
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "date_created": rfc2822(now),
            "date_updated": rfc2822(now),
            "date_sent": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/SM.json",
        }
        with self.lock:
            self.messages.append(message)
            created = len(self.messages)
        if self.lose_create_answers:
            self._answer(handler, 500, {"code": 20500, "message": "Internal Server Error"})
        else:
            self._answer(handler, 201, message)
        hook = self.on_create
        if hook is not None:
            hook(created)
