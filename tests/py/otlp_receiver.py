"""An OTLP/HTTP logs receiver for Latch's export tests, built on the official
`opentelemetry-proto` definitions (PyPI, pinned in tests/requirements.txt):
Python's http.server on 127.0.0.1 (an ephemeral port), nothing else.

It decodes every `POST /v1/logs` body as an `ExportLogsServiceRequest`,
keeps each request (headers, raw body, decoded records) and answers with
the statuses a test queues (`answers`), then 200 with an empty
`ExportLogsServiceResponse`:

    with OtlpReceiver() as otlp:
        ... policy: otlp_endpoint = otlp.url ...
        otlp.wait_for(lambda recs: any(...))

`OtlpReceiver(listening=False)` binds its port without listening (a
collector that is down: connections are refused) until `start()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


@dataclass
class Record:
    """One log record with what its request said about the sender."""

    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    time_unix_nano: int
    observed_time_unix_nano: int
    severity_number: int
    severity_text: str
    body: Any
    event_name: str
    attributes: dict[str, Any]
    # Fields Latch never sets (checked to be empty).
    unset: dict[str, Any] = field(default_factory=dict)

    @property
    def audit_id(self) -> int:
        return int(self.attributes["latch.audit.id"])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    time: float
    records: list[Record]


def decode(body: bytes) -> list[Record]:
    req = ExportLogsServiceRequest()
    req.ParseFromString(body)
    out = []
    for rl in req.resource_logs:
        resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(
                    Record(
                        resource=resource,
                        scope_name=sl.scope.name,
                        scope_version=sl.scope.version,
                        time_unix_nano=r.time_unix_nano,
                        observed_time_unix_nano=r.observed_time_unix_nano,
                        severity_number=r.severity_number,
                        severity_text=r.severity_text,
                        body=value(r.body),
                        event_name=r.event_name,
                        attributes={kv.key: value(kv.value) for kv in r.attributes},
                        unset={
                            "trace_id": r.trace_id,
                            "span_id": r.span_id,
                            "flags": r.flags,
                            "dropped_attributes_count": r.dropped_attributes_count,
                        },
                    )
                )
    return out


class OtlpReceiver:
    def __init__(self, listening: bool = True) -> None:
        self.received: list[Received] = []
        # Statuses to answer, in order, before the default 200: an int, or
        # (status, {header: value}).
        self.answers: list[int | tuple[int, dict[str, str]]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                receiver._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.server_bind()
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None
        if listening:
            self.start()

    def start(self) -> None:
        """Listens and serves (the collector comes up)."""
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        with self._cond:
            answer = self.answers.pop(0) if self.answers else 200
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        records = decode(body) if h.path == "/v1/logs" else []
        with self._cond:
            self.received.append(
                Received(h.path, {k.lower(): v for k, v in h.headers.items()}, body, status, time.monotonic(), records)
            )
            self._cond.notify_all()
        reply = ExportLogsServiceResponse().SerializeToString() if status == 200 else b"no"
        h.send_response(status)
        h.send_header("Content-Type", "application/x-protobuf")
        h.send_header("Content-Length", str(len(reply)))
        for k, v in extra.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(reply)

    def records(self, accepted_only: bool = True) -> list[Record]:
        """Every record received (in requests answered 2xx, unless told)."""
        with self._cond:
            return [r for req in self.received if not accepted_only or req.status < 300 for r in req.records]

    def wait_for(self, predicate: Callable[[list[Record]], bool], timeout: float = 20.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                recs = [r for req in self.received if req.status < 300 for r in req.records]
                if predicate(recs):
                    return recs
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"the receiver did not get what was expected within {timeout}s; it got "
                        f"{len(self.received)} requests: "
                        + "; ".join(f"{q.status} {[r.event_name for r in q.records]}" for q in self.received)
                    )
                self._cond.wait(left)
