"""A scripted model for real coding agents: Anthropic's Messages API
(streamed as server-sent events, or as one JSON body) on 127.0.0.1, from
the standard library only.

The script is a list of tool calls. A request whose conversation holds k
tool results is answered with the script's k-th tool call while there is
one, then with a final text. Requests that offer no tools (Claude Code's
own side questions: titles, summaries) get a short text. Every request is
appended to a JSON-lines log, so a test can read what the model was told
(the tool results, a hook's deny reason among them).

Run as a program, it is the whole agent run inside a network namespace
with loopback only (`unshare -n`): it brings `lo` up, serves the script,
runs the agent's command with ANTHROPIC_BASE_URL pointing at itself, and
exits with the agent's exit code:

    unshare -n python scripted_model.py SCRIPT.json LOG.jsonl -- claude -p …
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            out += [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return out


def reply_blocks(script: list[dict[str, Any]], body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop reason for one request."""
    if not body.get("tools"):
        return [{"type": "text", "text": "Latch test"}], "end_turn"
    k = len(tool_results(body))
    if k < len(script):
        step = script[k]
        block = {"type": "tool_use", "id": f"toolu_latch_{k:02d}", "name": step["name"], "input": step["input"]}
        return [block], "tool_use"
    return [{"type": "text", "text": "Done."}], "end_turn"


class ScriptedModel:
    def __init__(self, script: list[dict[str, Any]], log_path: str) -> None:
        self.script = script
        self.log_path = log_path
        self.lock = threading.Lock()
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                self._json(200, {"data": [], "has_more": False})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = {}
                with model.lock, open(model.log_path, "a") as log:
                    log.write(json.dumps({"path": self.path, "body": body}) + "\n")
                if "count_tokens" in self.path:
                    self._json(200, {"input_tokens": 100})
                    return
                if ":countTokens" in self.path:
                    self._json(200, {"totalTokens": 100})
                    return
                if ":streamGenerateContent" in self.path or ":generateContent" in self.path:
                    self._gemini(body)
                    return
                if self.path.rstrip("/").endswith("/responses"):
                    self._responses(body)
                    return
                blocks, stop = reply_blocks(model.script, body)
                message = {
                    "id": "msg_latch",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "claude-test"),
                    "content": blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 10},
                }
                if body.get("stream"):
                    self._stream(message)
                else:
                    self._json(200, message)

            def _gemini(self, body: dict[str, Any]) -> None:
                """Gemini's API: the script for the main loop, JSON for side questions."""
                contents = body.get("contents", [])
                k = sum(
                    1 for c in contents for p in c.get("parts", []) if isinstance(p, dict) and "functionResponse" in p
                )
                config = body.get("generationConfig") or {}
                if not body.get("tools") and config.get("responseMimeType") == "application/json":
                    # The model router and other structured side questions.
                    parts = [{"text": json.dumps({"complexity_reasoning": "a test", "complexity_score": 1})}]
                elif body.get("tools") and k < len(model.script):
                    step = model.script[k]
                    parts = [{"functionCall": {"name": step["name"], "args": step["input"]}}]
                else:
                    parts = [{"text": "Done."}]
                reply = {
                    "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 10, "totalTokenCount": 20},
                }
                if ":streamGenerateContent" in self.path:
                    data = f"data: {json.dumps(reply)}\n\n".encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._json(200, reply)

            def _responses(self, body: dict[str, Any]) -> None:
                """OpenAI's Responses API (Codex), streamed."""
                items = body.get("input") or []
                k = sum(1 for i in items if isinstance(i, dict) and i.get("type") == "function_call_output")
                if body.get("tools") and k < len(model.script):
                    step = model.script[k]
                    args = step["input"] if isinstance(step["input"], str) else json.dumps(step["input"])
                    item: dict[str, Any] = {
                        "type": "function_call", "id": f"fc_{k}", "call_id": f"call_latch_{k:02d}",
                        "name": step["name"], "arguments": args, "status": "completed",
                    }  # fmt: skip
                    if step.get("custom"):
                        item = {
                            "type": "custom_tool_call", "id": f"ctc_{k}", "call_id": f"call_latch_{k:02d}",
                            "name": step["name"], "input": step["input"], "status": "completed",
                        }  # fmt: skip
                else:
                    item = {
                        "type": "message", "id": "msg_latch", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
                    }  # fmt: skip
                usage = {
                    "input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 20,
                }  # fmt: skip
                resp = {"id": "resp_latch", "object": "response", "status": "in_progress", "output": []}
                events = [
                    ("response.created", {"type": "response.created", "response": resp}),
                    ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item}),
                    ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
                    (
                        "response.completed",
                        {"type": "response.completed", "response": {**resp, "status": "completed", "output": [item], "usage": usage}},
                    ),
                ]
                data = "".join(f"event: {name}\ndata: {json.dumps(ev)}\n\n" for name, ev in events).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, message: dict[str, Any]) -> None:
                events: list[tuple[str, dict[str, Any]]] = [
                    ("message_start", {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}})
                ]
                for i, block in enumerate(message["content"]):
                    if block["type"] == "text":
                        start = {"type": "text", "text": ""}
                        delta = {"type": "text_delta", "text": block["text"]}
                    else:
                        start = {**block, "input": {}}
                        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                    events += [
                        ("content_block_start", {"type": "content_block_start", "index": i, "content_block": start}),
                        ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}),
                        ("content_block_stop", {"type": "content_block_stop", "index": i}),
                    ]
                events += [
                    (
                        "message_delta",
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                            "usage": {"output_tokens": 10},
                        },
                    ),
                    ("message_stop", {"type": "message_stop"}),
                ]
                data = "".join(f"event: {name}\ndata: {json.dumps(ev)}\n\n" for name, ev in events).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_log(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str]) -> int:
    script_path, log_path, sep, *cmd = argv
    assert sep == "--", "usage: scripted_model.py SCRIPT LOG -- CMD…"
    # Inside `unshare -n` only loopback exists, and it starts down.
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open(script_path) as f:
        script = json.load(f)
    model = ScriptedModel(script, log_path)
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": model.base_url,
        "GOOGLE_GEMINI_BASE_URL": model.base_url,
        "COPILOT_PROVIDER_BASE_URL": model.base_url,
    }
    # Codex reads its provider's address from config.toml: `{MODEL_URL}`
    # there (or the address of an earlier run) becomes ours.
    config = os.path.join(env.get("HOME", ""), ".codex", "config.toml")
    if os.path.exists(config):
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(re.sub(r"http://127\.0\.0\.1:\d+", model.base_url, text.replace("{MODEL_URL}", model.base_url)))
    try:
        return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL).returncode
    finally:
        model.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
