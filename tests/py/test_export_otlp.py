"""Every audit row exported as an OpenTelemetry log record (OTLP/HTTP,
protobuf) to the collector `[export] otlp_endpoint` names.

The collector here is `otlp_receiver.OtlpReceiver`, which decodes each
request with the official opentelemetry-proto definitions. The calls go
through the real `latch shim` to latch-test-server; what the receiver gets
is compared with the audit log itself (ids, hashes, chain order).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until
from otlp_receiver import OtlpReceiver, Record

SHIM = via_shim("ours", our_server_cmd(), autostart=False)  # the tests start their daemons
HEADER_SECRET = "hdr-value-k3y-9f8e7d"
HEADERS_ENV = {"OTEL_EXPORTER_OTLP_HEADERS": f"api-key={HEADER_SECRET},x-team=sec%20ops"}
# A GitHub token (a value pattern) and a key named like a secret.
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
API_KEY = "live-key-5c1d9e0f7a2b"


def policy(url: str, extra: str = "") -> str:
    return f'[approvals]\nhold_seconds = 30\n\n[export]\notlp_endpoint = "{url}"\ninterval_ms = 100\n{extra}'


def start(home: Home, url: str, extra: str = "", env: dict[str, str] | None = None) -> Daemon:
    """A daemon exporting to `url`, once its exporter has taken its place
    in the log (rows from then on are exported)."""
    home.write_policy(policy(url, extra))
    daemon = Daemon(home, env={**HEADERS_ENV, **(env or {})})
    daemon.wait_ready()
    assert wait_until(lambda: home.latch_json("status", "--json").get("export"), 10.0), daemon.log()
    return daemon


def status_export(home: Home) -> dict[str, Any]:
    return home.latch_json("status", "--json")["export"]


def stored_rows(home: Home) -> dict[int, dict[str, Any]]:
    """Every committed row of the log by id, as SQLite has it."""
    home.latch("audit", "--json", "--limit", "1")  # flushes what the daemon journaled
    with sqlite3.connect(f"file:{home.latch_home / 'audit.db'}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in conn.execute("SELECT * FROM events ORDER BY id")}


def calls(records: list[Record], tool: str) -> list[Record]:
    return [r for r in records if r.event_name == "latch.call" and r.attributes.get("gen_ai.tool.name") == tool]


CLIENTS: list[WireClient] = []


def close_all() -> None:
    """Shims end before their daemon does: a shim left running would start a
    daemon of its own (without this test's environment)."""
    while CLIENTS:
        CLIENTS.pop().close()


def connect(wire: Callable[..., WireClient]) -> WireClient:
    client = wire(SHIM)
    CLIENTS.append(client)
    client.initialize()
    client.call("tools/list")
    return client


def test_every_field_of_an_allowed_an_asked_and_answered_and_a_denied_call(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    with OtlpReceiver() as otlp:
        daemon = start(home, otlp.url)
        try:
            client = connect(wire)
            ok = client.call("tools/call", {"name": "echo", "arguments": {"text": "hello"}})
            assert not ok["result"].get("isError"), ok
            asked = client.request("tools/call", {"name": "run_command", "arguments": {"command": "make deploy"}})
            pending = home.wait_pending(tool="run_command")
            home.approve(pending["id"])
            assert not client.response(asked, timeout=30)["result"].get("isError")
            denied = client.call(
                "tools/call",
                {
                    "name": "create_payment",
                    "arguments": {"amount": 5, "currency": "EUR", "recipient": TOKEN, "api_key": API_KEY},
                },
            )
            assert denied["result"]["isError"], denied
            recs = otlp.wait_for(
                lambda rs: bool(calls(rs, "create_payment"))
                and any(r.event_name == "latch.answer" for r in rs)
                and bool(calls(rs, "echo"))
            )
            version = home.latch_json("status", "--json")["version"]
        finally:
            close_all()
            assert daemon.stop() == 0
        rows = stored_rows(home)

    # Nothing secret anywhere in what left the machine.
    for req in otlp.received:
        assert TOKEN.encode() not in req.body and API_KEY.encode() not in req.body
        assert req.path == "/v1/logs"
        assert req.headers["content-type"] == "application/x-protobuf"
        assert req.headers["api-key"] == HEADER_SECRET
        assert req.headers["x-team"] == "sec ops"
    assert HEADER_SECRET not in daemon.log_path.read_text()
    # A fresh start is not mistaken for an edited position.
    assert "ahead of the audit log" not in daemon.log_path.read_text()

    # Chain order, each row once, nothing skipped after the first.
    ids = [r.audit_id for r in recs]
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids
    for r in recs:
        row = rows[r.audit_id]
        assert r.resource == {"service.name": "latch", "service.version": version, "host.name": socket.gethostname()}
        assert (r.scope_name, r.scope_version) == ("latch", version)
        assert r.time_unix_nano == row["time_ms"] * 1_000_000
        assert r.observed_time_unix_nano >= r.time_unix_nano
        assert r.event_name == f"latch.{row['kind']}"
        assert r.attributes["latch.kind"] == row["kind"]
        assert r.attributes["latch.audit.hash"] == row["hash"]
        assert r.attributes.get("latch.audit.prev_hash", "") == (row["prev_hash"] or "")
        if r.audit_id - 1 in rows:
            assert r.attributes["latch.audit.prev_hash"] == rows[r.audit_id - 1]["hash"]
        assert r.unset == {"trace_id": b"", "span_id": b"", "flags": 0, "dropped_attributes_count": 0}

    (echo,) = calls(recs, "echo")
    row = rows[echo.audit_id]
    assert (echo.severity_number, echo.severity_text) == (9, "INFO")
    assert echo.body == "allow ours/echo (READ)"
    a = echo.attributes
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "echo"
    assert a["mcp.method.name"] == "tools/call"
    assert a["latch.hook"] is False
    assert (a["latch.server"], a["latch.class"], a["latch.decision"]) == ("ours", "READ", "allow")
    assert a["latch.session"] == row["session"] and row["session"]
    assert json.loads(a["latch.arguments"]) == {"text": "hello"}
    assert a["latch.arguments_hash"] == row["args_hash"]
    assert a["latch.reasons"] == json.loads(row["reasons"])
    assert "latch.answered_by" not in a and "latch.approval_id" not in a

    (ask,) = calls(recs, "run_command")
    a = ask.attributes
    assert (ask.severity_number, ask.severity_text) == (13, "WARN")
    assert ask.body == "ask ours/run_command (EXECUTE)"
    assert (a["latch.class"], a["latch.decision"], a["latch.approval_id"]) == ("EXECUTE", "ask", pending["id"])
    assert json.loads(a["latch.arguments"]) == {"command": "make deploy"}
    assert a["latch.reasons"] == json.loads(rows[ask.audit_id]["reasons"]) and a["latch.reasons"]
    (answer,) = [r for r in recs if r.event_name == "latch.answer"]
    a = answer.attributes
    assert answer.audit_id > ask.audit_id
    assert (answer.severity_number, answer.severity_text) == (9, "INFO")
    assert a["latch.decision"] == "allow" and a["latch.approval_id"] == pending["id"]
    assert a["latch.answered_by"].startswith("cli:") and a["latch.answered_by"] == rows[answer.audit_id]["answered_by"]
    assert a["gen_ai.tool.name"] == "run_command" and "gen_ai.operation.name" not in a
    assert answer.body == f"{a['latch.answered_by']} answered allow to approval {pending['id']} for ours/run_command"

    (deny,) = calls(recs, "create_payment")
    a = deny.attributes
    assert (deny.severity_number, deny.severity_text) == (13, "WARN")
    assert (a["latch.class"], a["latch.decision"]) == ("TRANSFER_VALUE", "deny")
    args = json.loads(a["latch.arguments"])
    assert args["amount"] == 5 and args["currency"] == "EUR"
    assert TOKEN not in a["latch.arguments"] and API_KEY not in a["latch.arguments"]
    assert args["api_key"] != API_KEY and args["recipient"] != TOKEN
    assert json.loads(a["latch.arguments"]) == json.loads(rows[deny.audit_id]["args"])


def test_a_503_is_retried_after_retry_after_and_nothing_is_lost_or_sent_twice(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    with OtlpReceiver() as otlp:
        otlp.answers = [503, (503, {"Retry-After": "1"})]
        daemon = start(home, otlp.url)
        try:
            client = connect(wire)
            for i in range(3):
                client.call("tools/call", {"name": "echo", "arguments": {"i": i}})
            recs = otlp.wait_for(lambda rs: len(calls(rs, "echo")) == 3)
            assert wait_until(lambda: status_export(home).get("problem") is None, 10.0), status_export(home)
        finally:
            close_all()
            assert daemon.stop() == 0
    statuses = [q.status for q in otlp.received]
    assert statuses[:3] == [503, 503, 200], statuses
    # The same batch, sent again; the third try waited out Retry-After.
    assert otlp.received[0].body == otlp.received[1].body == otlp.received[2].body
    assert otlp.received[2].time - otlp.received[1].time >= 0.95
    ids = [r.audit_id for r in recs]
    assert len(ids) == len(set(ids)) and ids == sorted(ids), ids
    assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_collector_down_daemon_killed_and_restarted_then_everything_arrives(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    otlp = OtlpReceiver(listening=False)
    try:
        daemon = start(home, otlp.url)
        client = connect(wire)
        began = time.monotonic()
        for i in range(5):
            r = client.call("tools/call", {"name": "echo", "arguments": {"n": i}})
            assert not r["result"].get("isError"), r
        # A dead collector never holds a call back.
        assert time.monotonic() - began < 10
        state = wait_until(lambda: (s := status_export(home)).get("problem") and s["waiting"] >= 5 and s, 10.0)
        assert state and "cannot reach" in state.get("problem", ""), status_export(home)
        assert home.latch("status").stdout.count("NOT WORKING") >= 1
        close_all()
        os.kill(daemon.pid, signal.SIGKILL)
        assert daemon.stop() == -signal.SIGKILL
        restarted = Daemon(home, env=HEADERS_ENV)
        restarted.wait_ready()
        try:
            otlp.start()
            recs = otlp.wait_for(lambda rs: len(calls(rs, "echo")) == 5, timeout=30)
            rows = stored_rows(home)
            ids = [r.audit_id for r in recs]
            # Every row from the first exported one on, once, in order.
            assert ids == list(range(ids[0], max(rows) + 1)) or ids == list(range(ids[0], ids[-1] + 1)), ids
            assert len(set(ids)) == len(ids)
            assert [json.loads(r.attributes["latch.arguments"]) for r in calls(recs, "echo")] == [
                {"n": i} for i in range(5)
            ]
            assert wait_until(lambda: status_export(home).get("problem") is None, 10.0)
            assert status_export(home)["dropped"] == 0
        finally:
            close_all()
            assert restarted.stop() == 0
    finally:
        otlp.close()


def test_past_the_queue_bound_the_oldest_rows_are_dropped_and_the_count_is_exported(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    otlp = OtlpReceiver(listening=False)
    try:
        daemon = start(home, otlp.url, "max_queue_rows = 10\n")
        try:
            client = connect(wire)
            for i in range(20):
                client.call("tools/call", {"name": "echo", "arguments": {"n": i}})
            dropped = wait_until(lambda: status_export(home)["dropped"], 30.0)
            assert dropped, status_export(home)
            assert f"{dropped} dropped" in home.latch("status").stdout or status_export(home)["dropped"] > dropped

            def newest_echo_arrived(rs: list[Record]) -> bool:
                echoes = calls(rs, "echo")
                return bool(echoes) and json.loads(echoes[-1].attributes["latch.arguments"]) == {"n": 19}

            otlp.start()
            recs = otlp.wait_for(
                lambda rs: newest_echo_arrived(rs) and any(r.event_name == "latch.export_dropped" for r in rs),
                timeout=60,
            )
            state = status_export(home)
            rows = stored_rows(home)
        finally:
            close_all()
            assert daemon.stop() == 0
        drops = [r for r in recs if r.event_name == "latch.export_dropped"]
        for drop in drops:
            assert (drop.severity_number, drop.severity_text) == (17, "ERROR")
            assert 0 < drop.attributes["latch.export.dropped"] <= drop.attributes["latch.export.dropped_total"]
            assert "not exported" in drop.body and "max_queue_rows = 10" in drop.attributes["latch.detail"]
        assert max(d.attributes["latch.export.dropped_total"] for d in drops) <= state["dropped"]
        # Every id from where export began that the receiver never saw was
        # counted as dropped, and only those.
        began = min(i for i, r in rows.items() if r["kind"] == "export_started")
        seen = {r.audit_id for r in recs}
        span = set(range(began, max(seen) + 1))
        assert len(span - seen) == state["dropped"], (sorted(span - seen), state)
        # What arrived is the newest rows: the oldest echoes were dropped.
        assert len(calls(recs, "echo")) < 20
    finally:
        otlp.close()


def test_rows_removed_by_retention_before_export_count_as_dropped(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    otlp = OtlpReceiver(listening=False)
    try:
        daemon = start(home, otlp.url, "batch_size = 10\n\n[audit]\nmax_rows = 100\n")
        try:
            client = connect(wire)
            ids = [client.request("tools/call", {"name": "echo", "arguments": {"n": i}}) for i in range(150)]
            for request_id in ids:
                client.response(request_id, timeout=30.0)
            home.latch("audit", "prune")
            otlp.start()
            recs = otlp.wait_for(lambda rs: any(r.event_name == "latch.export_dropped" for r in rs), timeout=60)
            recs = otlp.wait_for(lambda rs: any(r.event_name == "latch.retention" for r in rs), timeout=30)
            state = status_export(home)
        finally:
            close_all()
            assert daemon.stop() == 0
        drop = next(r for r in recs if r.event_name == "latch.export_dropped")
        assert "retention" in drop.attributes["latch.detail"]
        assert drop.attributes["latch.export.dropped"] >= 30
        assert state["dropped"] == drop.attributes["latch.export.dropped_total"]
        # Every id the receiver never saw was counted as dropped.
        seen = {r.audit_id for r in recs}
        first, last = min(seen), max(seen)
        assert (last - first + 1) - len(seen) == state["dropped"]
    finally:
        otlp.close()


def test_a_400_is_counted_as_rejected_and_never_sent_again(home: Home, wire: Callable[..., WireClient]) -> None:
    with OtlpReceiver() as otlp:
        otlp.answers = [400]
        daemon = start(home, otlp.url)
        try:
            client = connect(wire)
            client.call("tools/call", {"name": "echo", "arguments": {"first": True}})
            wait_until(lambda: otlp.received, 10.0)
            assert wait_until(lambda: status_export(home)["rejected"] > 0, 10.0), status_export(home)
            client.call("tools/call", {"name": "echo", "arguments": {"second": True}})
            otlp.wait_for(
                lambda rs: any(
                    json.loads(r.attributes.get("latch.arguments", "null") or "null") == {"second": True}
                    for r in calls(rs, "echo")
                )
            )
        finally:
            close_all()
            assert daemon.stop() == 0
    refused = {r.audit_id for r in otlp.received[0].records}
    assert otlp.received[0].status == 400 and refused
    later = [r.audit_id for q in otlp.received[1:] for r in q.records]
    assert not refused & set(later), (refused, later)
    assert "HTTP 400" in daemon.log_path.read_text()


def test_a_401_keeps_the_rows_until_the_credentials_work(home: Home, wire: Callable[..., WireClient]) -> None:
    # Wrong or missing credentials are a setup problem, not bad records:
    # refusing each batch for good would destroy every record until fixed.
    with OtlpReceiver() as otlp:
        otlp.answers = [401, 403]
        daemon = start(home, otlp.url)
        try:
            connect(wire).call("tools/call", {"name": "echo", "arguments": {"kept": True}})
            recs = otlp.wait_for(lambda rs: bool(calls(rs, "echo")))
            assert status_export(home)["rejected"] == 0
        finally:
            close_all()
            assert daemon.stop() == 0
    assert [q.status for q in otlp.received][:3] == [401, 403, 200]
    assert "refused the credentials (HTTP 401)" in daemon.log_path.read_text()
    assert otlp.received[0].body == otlp.received[2].body
    assert json.loads(calls(recs, "echo")[0].attributes["latch.arguments"]) == {"kept": True}


def test_a_collector_that_never_answers_does_not_slow_calls(home: Home, wire: Callable[..., WireClient]) -> None:
    # A socket that accepts connections and never reads: every request
    # hangs until its time limit.
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(64)
    try:
        url = f"http://127.0.0.1:{sink.getsockname()[1]}"
        daemon = start(home, url, "timeout_seconds = 30\n")
        try:
            client = connect(wire)
            for i in range(10):
                began = time.monotonic()
                r = client.call("tools/call", {"name": "echo", "arguments": {"n": i}})
                assert not r["result"].get("isError")
                # Far below the 30 s a request to the collector waits: no call
                # waits for the exporter (the margin is for a loaded machine).
                assert time.monotonic() - began < 10.0
            assert status_export(home)["delivered"] == 0
        finally:
            close_all()
            assert daemon.stop() == 0
    finally:
        sink.close()


def test_a_position_file_moved_ahead_does_not_silence_the_export(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    with OtlpReceiver() as otlp:
        daemon = start(home, otlp.url)
        assert daemon.stop() == 0
        position = home.latch_home / "otlp-export.json"
        saved = json.loads(position.read_text())
        position.write_text(json.dumps({**saved, "next_id": saved["next_id"] + 1_000_000}))
        daemon = start(home, otlp.url)
        try:
            connect(wire).call("tools/call", {"name": "echo", "arguments": {"after": "edit"}})
            otlp.wait_for(lambda rs: bool(calls(rs, "echo")))
        finally:
            close_all()
            assert daemon.stop() == 0
        assert "ahead of the audit log" in daemon.log_path.read_text()


def test_a_deleted_position_sends_again_from_where_export_began_rather_than_skipping(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    otlp = OtlpReceiver(listening=False)
    try:
        daemon = start(home, otlp.url)
        try:
            client = connect(wire)
            for i in range(3):
                client.call("tools/call", {"name": "echo", "arguments": {"owed": i}})
        finally:
            close_all()
            assert daemon.stop() == 0
        (home.latch_home / "otlp-export.json").unlink()
        daemon = start(home, otlp.url)
        try:
            otlp.start()
            recs = otlp.wait_for(lambda rs: len(calls(rs, "echo")) == 3, timeout=30)
        finally:
            assert daemon.stop() == 0
        assert recs[0].event_name == "latch.export_started"
        assert "sending again from where export began" in daemon.log_path.read_text()
    finally:
        otlp.close()


def test_a_typo_in_the_section_is_a_policy_error_not_a_silent_off(home: Home) -> None:
    home.write_policy('[export]\notlp_endpiont = "http://127.0.0.1:4318"\n')
    out = home.latch("policy", "check", check=False)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "otlp_endpiont" in text and "otlp_endpoint" in text, text
