"""A small streamable HTTP MCP server of our own for the fault tests of
`latch shim --url`: run as `python remote_fault_server.py RECORD.jsonl`.

It binds 127.0.0.1 on a free port and reports it on stderr as
"LATCH_TEST_LISTENING <port>". Every HTTP request it gets is appended to
RECORD (HTTP method, headers, parsed body), so a test can prove what did or
did not reach the server. Its tools each provoke one fault:

- echo: answers at once (JSON); region: the same, with `region` declared
  `x-mcp-header: Region`;
- slow {seconds}: answers after that long;
- drop: an event stream that sends one event (with an id) and is cut before
  the answer; a GET with `Last-Event-ID` then delivers the answer;
- drop_noid: the same cut, without an event id (cannot be resumed);
- fail500: HTTP 500; auth401: HTTP 401 with `WWW-Authenticate`;
- end_session: answers, then forgets the session (its id gets 404 from then
  on; a new initialize starts another); end_for_good: the same, and every
  later initialize gets HTTP 500.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SESSION = "sess-7f3a"
# Sessions alive, and how many were started.
LIVE: set[str] = set()
STARTED = [0]
NO_MORE_SESSIONS = [False]
RECORD_LOCK = threading.Lock()
# Answers owed on a resumed stream: last event id → message.
RESUMABLE: dict[str, dict[str, Any]] = {}

RAW_RESULT = b'{"result" :{"n": 1.50, "big": 12345678901234567890, "s":"\\u00e9\xc3\xa9", "e":[ ]},"jsonrpc":"2.0","id":ID}'

TOOLS = [
    {"name": n, "description": n, "inputSchema": {"type": "object", "properties": p}}
    for n, p in [
        ("echo", {"message": {"type": "string"}}),
        ("region", {"region": {"type": "string", "x-mcp-header": "Region"}, "body": {"type": "string"}}),
        ("slow", {"seconds": {"type": "number"}}),
        ("drop", {}),
        ("drop_noid", {}),
        ("fail500", {}),
        ("fail500_endless", {}),
        ("auth401", {}),
        ("end_session", {}),
        ("end_for_good", {}),
    ]
]


def result(msg_id: Any, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": value}


def text(msg_id: Any, t: str) -> dict[str, Any]:
    return result(msg_id, {"content": [{"type": "text", "text": t}]})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record_path = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def record(self, body: Any) -> None:
        entry = {"http": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        entry["body"] = body
        with RECORD_LOCK, open(self.record_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_plain(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def event(self, data: Any, event_id: str | None = None) -> None:
        chunk = (f"id: {event_id}\n" if event_id else "") + f"data: {json.dumps(data)}\n\n"
        self.wfile.write(chunk.encode())
        self.wfile.flush()

    def elsewhere(self) -> bool:
        """Only /mcp is an MCP endpoint: anything else is 404. GET /foreign-sse
        is an HTTP+SSE server naming an endpoint on another origin."""
        if self.path == "/mcp":
            return False
        if self.command == "GET" and self.path == "/noisy-sse":
            self.start_stream()
            try:
                while True:
                    self.wfile.write(b": still here\n" * 1000)
            except OSError:
                pass
            return True
        if self.command == "GET" and self.path == "/foreign-sse":
            self.start_stream()
            port = self.server.server_address[1]
            self.wfile.write(f"event: endpoint\ndata: http://localhost:{port}/mcp?steal=1\n\n".encode())
            self.wfile.flush()
            return True
        self.send_plain(404, "not found")
        return True

    def do_GET(self) -> None:
        self.record(None)
        if self.elsewhere():
            return
        last = self.headers.get("Last-Event-ID")
        if last and last in RESUMABLE:
            self.start_stream()
            self.event(RESUMABLE.pop(last), event_id=last + "-answer")
            return
        self.send_plain(405, "no server stream here")

    def do_DELETE(self) -> None:
        self.record(None)
        if self.elsewhere():
            return
        self.send_plain(200, "")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            self.record(raw.decode(errors="replace"))
            self.send_plain(400, "not JSON")
            return
        self.record(msg)
        if self.elsewhere():
            return
        method, msg_id = msg.get("method"), msg.get("id")
        if method == "initialize":
            if NO_MORE_SESSIONS[0]:
                self.send_plain(500, "no more sessions")
                return
            version = msg.get("params", {}).get("protocolVersion", "2025-11-25")
            info = {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": {"name": "fault", "version": "1"}}
            STARTED[0] += 1
            session = SESSION if STARTED[0] == 1 else f"sess-{STARTED[0]}"
            LIVE.add(session)
            self.send_json(200, result(msg_id, info), {"Mcp-Session-Id": session})
            return
        session = self.headers.get("Mcp-Session-Id")
        if session is None:
            self.send_plain(400, "no session")
            return
        if session not in LIVE:
            self.send_plain(404, "session not found")
            return
        if msg_id is None or method is None:
            self.send_plain(202, "")
            return
        if method in ("raw/json", "raw/sse"):
            # Odd but valid JSON: the bytes must reach the client unchanged.
            body = RAW_RESULT.replace(b"ID", json.dumps(msg_id).encode())
            if method == "raw/json":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.start_stream()
                self.wfile.write(b"event: message\r\ndata: " + body + b"\r\n\r\n")
                self.wfile.flush()
            return
        if method == "tools/list":
            self.send_json(200, result(msg_id, {"tools": TOOLS}))
            return
        if method != "tools/call":
            self.send_json(200, {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32601, "message": "no"}})
            return
        name = msg["params"]["name"]
        args = msg["params"].get("arguments") or {}
        if name == "echo":
            self.send_json(200, text(msg_id, args.get("message", "")))
        elif name == "region":
            self.send_json(200, text(msg_id, "region " + str(args.get("region"))))
        elif name == "slow":
            time.sleep(float(args.get("seconds", 1)))
            self.send_json(200, text(msg_id, "slow done"))
        elif name in ("drop", "drop_noid"):
            self.start_stream()
            progress = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}}
            event_id = f"ev-{msg_id}" if name == "drop" else None
            if event_id:
                RESUMABLE[event_id] = text(msg_id, "resumed answer")
            self.event(progress, event_id=event_id)
            # Cut mid-event: the connection ends before the answer.
            self.wfile.write(b"data: {\"jsonrpc\":")
            self.wfile.flush()
        elif name == "fail500_endless":
            # An error whose body never ends: only its start may be read.
            self.send_response(500)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(b"endless failure ")
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass
        elif name in ("end_session", "end_for_good"):
            LIVE.discard(session)
            NO_MORE_SESSIONS[0] = name == "end_for_good"
            self.send_json(200, text(msg_id, "ended"))
        elif name == "fail500":
            self.send_plain(500, "database on fire")
        elif name == "auth401":
            self.send_plain(401, "token expired", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        else:
            self.send_json(200, {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32602, "message": "unknown tool"}})


def main() -> None:
    Handler.record_path = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"LATCH_TEST_LISTENING {server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
