"""Fake language-model servers for the model judge's tests: an
OpenAI-compatible chat completions endpoint and Anthropic's Messages API,
on 127.0.0.1 and an ephemeral port, built on the standard library only.

Each records every request it gets (path, headers, JSON body) and answers
according to its `mode`:

- "answer": the judgement in `holds` / `reason`, in the provider's
  structured form (OpenAI: `choices[0].message.content` holding the JSON
  text; Anthropic: a `tool_use` block named `judgement`);
- "malformed": a well-formed response whose answer is prose, not the JSON
  asked for;
- "error": HTTP 500;
- "hang": no answer until the server is closed.

`refused_url()` gives a URL on which nothing listens.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user_text(self) -> str:
        """The user message (both providers put the call there)."""
        for message in self.body.get("messages", []):
            if message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content)
        return ""

    @property
    def system_text(self) -> str:
        if "system" in self.body:
            return str(self.body["system"])
        for message in self.body.get("messages", []):
            if message.get("role") == "system":
                return str(message.get("content"))
        return ""

    def call_block(self) -> dict[str, Any]:
        """The call between <call> and </call>, decoded (a JSON string holding JSON)."""
        text = self.user_text
        assert text.count("<call>") == 1 and text.count("</call>") == 1, text
        block = text[text.index("<call>") + len("<call>") : text.index("</call>")]
        return json.loads(json.loads(block))


@dataclass
class FakeLLM:
    provider: str  # "openai" or "anthropic"
    mode: str = "answer"
    holds: bool = True
    reason: str = "the fake model says so"
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = {"__unparsable__": raw.decode(errors="replace")}
                with fake._lock:
                    fake.requests.append(
                        Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                fake._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "hang":
            self._release.wait(30)
            return
        if self.mode == "error":
            self._send(h, 500, {"error": {"message": "the fake model fell over"}})
            return
        answer = json.dumps({"holds": self.holds, "reason": self.reason})
        if self.provider == "openai":
            content = "Sure! I think it holds." if self.mode == "malformed" else answer
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": "fake-model",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
            }
        else:
            if self.mode == "malformed":
                blocks = [{"type": "text", "text": "Sure! I think it holds."}]
            else:
                blocks = [
                    {
                        "type": "tool_use",
                        "id": "toolu_fake",
                        "name": "judgement",
                        "input": {"holds": self.holds, "reason": self.reason},
                    }
                ]
            payload = {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": "fake-model",
                "content": blocks,
                "stop_reason": "tool_use",
            }
        self._send(h, 200, payload)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def refused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (the port was just freed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
