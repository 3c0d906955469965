"""A fake Telegram Bot API server for Latch's tests: Python's http.server on
127.0.0.1 (an ephemeral port), nothing else.

It answers the methods Latch's bot uses in the real Bot API's JSON shapes
(so teloxide parses them), records every request (method, token, raw body),
and feeds button presses to `getUpdates` long polls:

    with FakeTelegram(token="123:abc") as tg:
        ... policy: api_url = tg.url ...
        sent = tg.wait_for("sendMessage")
        query_id = tg.press(user, sent.json["reply_markup"]["inline_keyboard"][0][0]["callback_data"], sent)
        tg.wait_for("answerCallbackQuery", lambda r: r.json["callback_query_id"] == query_id)

Method names arrive as `/bot<TOKEN>/SendMessage` (teloxide's spelling) and
are matched case-insensitively. A request with another token is answered
401 Unauthorized, as Telegram does.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOT_USER = {"id": 700000001, "is_bot": True, "first_name": "Latch", "username": "latch_test_bot"}

# Longest a getUpdates is held open here, whatever timeout the client asks.
MAX_POLL_SECONDS = 10.0


@dataclass
class Request:
    method: str  # lower case: "sendmessage"
    token: str
    body: bytes
    json: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0
    # What the fake answered (`result` of a successful call), None on error.
    result: Any = None

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def user(user_id: int, username: str | None, first_name: str = "Test") -> dict[str, Any]:
    u: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        u["username"] = username
    return u


def chat(chat_id: int) -> dict[str, Any]:
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": "Latch approvals"}
    return {"id": chat_id, "type": "private", "first_name": "Owner"}


class FakeTelegram:
    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[Request] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._update_ids = itertools.count(100)
        self._message_ids = itertools.count(500)
        self._query_ids = itertools.count(9000)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the test's side

    def calls(self, method: str) -> list[Request]:
        with self._cond:
            return [r for r in self.requests if r.method == method.lower()]

    def wait_for(
        self, method: str, predicate: Callable[[Request], bool] = lambda r: True, timeout: float = 15.0, after: int = 0
    ) -> Request:
        """The first request of METHOD (from the ATFER-th request on) matching PREDICATE."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.requests[after:]:
                    if r.method == method.lower() and predicate(r):
                        return r
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(r.method, r.text[:200]) for r in self.requests]
                    raise AssertionError(f"no {method} request within {timeout}s; requests: {seen}")
                self._cond.wait(remaining)

    def mark(self) -> int:
        """A position in the record, for `wait_for(after=...)`."""
        with self._cond:
            return len(self.requests)

    def press(self, presser: dict[str, Any], data: str, message: dict[str, Any]) -> str:
        """Queues a callback query (a button press by PRESSER on MESSAGE); returns its id."""
        query_id = str(next(self._query_ids))
        update = {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": query_id,
                "from": presser,
                "message": message,
                "chat_instance": "-42",
                "data": data,
            },
        }
        with self._cond:
            self._updates.append(update)
            self._cond.notify_all()
        return query_id

    # ------------------------------------------------------------ the server's side

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = h.path.split("?")[0].strip("/").split("/")
        token = parts[0][3:] if parts and parts[0].startswith("bot") else ""
        method = parts[1].lower() if len(parts) > 1 else ""
        try:
            payload = json.loads(body) if body else {}
        except json.JSONDecodeError:
            payload = {}
        request = Request(method, token, body, payload, time.time())
        handler = getattr(self, f"_m_{method}", None)
        if token != self.token:
            status, answer = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        elif handler is None:
            status, answer = 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        else:
            request.result = handler(payload)
            status, answer = 200, {"ok": True, "result": request.result}
        # Recorded once answered: a test that sees a request sees its result.
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
        self._reply(h, status, answer)

    def _reply(self, h: BaseHTTPRequestHandler, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its poll was aborted)

    def _message(self, chat_id: int, text: str, markup: dict[str, Any] | None, message_id: int) -> dict[str, Any]:
        m: dict[str, Any] = {
            "message_id": message_id,
            "from": BOT_USER,
            "chat": chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if markup:
            m["reply_markup"] = markup
        return m

    def _m_getme(self, p: dict[str, Any]) -> Any:
        return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _m_deletewebhook(self, p: dict[str, Any]) -> Any:
        return True

    def _m_getupdates(self, p: dict[str, Any]) -> Any:
        offset = int(p.get("offset") or 0)
        wait = min(float(p.get("timeout") or 0), MAX_POLL_SECONDS)
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                # As Telegram: an offset confirms (forgets) every earlier update.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or self._closed:
                    return list(self._updates)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)

    def _m_sendmessage(self, p: dict[str, Any]) -> Any:
        message_id = next(self._message_ids)
        m = self._message(int(p["chat_id"]), p["text"], p.get("reply_markup"), message_id)
        with self._cond:
            self.messages[message_id] = m
        return m

    def _m_editmessagetext(self, p: dict[str, Any]) -> Any:
        message_id = int(p["message_id"])
        m = self._message(int(p["chat_id"]), p["text"], p.get("reply_markup"), message_id)
        with self._cond:
            self.messages[message_id] = m
        return m

    def _m_answercallbackquery(self, p: dict[str, Any]) -> Any:
        return True
