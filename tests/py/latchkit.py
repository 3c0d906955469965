"""Helpers for Latch's integration tests: binaries, one test's LATCH_HOME, the
daemon, the `latch` CLI, MCP clients (the official Python SDK and a raw wire
client), and the process scan that proves nothing was left running.

Every process a test starts gets `LATCH_HOME=<that test's home>` in its
environment (shims, daemons and servers inherit it), so "what is still
running for this test" is answered by scanning /proc/*/environ for it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parents[2]
LATCH_BIN = os.environ.get("LATCH_BIN") or str(REPO / "target" / "debug" / "latch")
TEST_SERVER = os.environ.get("LATCH_TEST_SERVER") or str(REPO / "target" / "debug" / "latch-test-server")
NODE_BIN = REPO / "tests" / "node_modules" / ".bin"

# What MCP clients pass to the servers they spawn (the TypeScript and Python
# SDKs alike): these variables only, plus the config's own `env`.
AGENT_ENV_KEYS = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")

# Default bound on one MCP request made by a test, in seconds.
CALL_TIMEOUT = 30.0


# ---------------------------------------------------------------- commands


def filesystem_cmd(root: Path | str) -> list[str]:
    """@modelcontextprotocol/server-filesystem serving ROOT."""
    return [str(NODE_BIN / "mcp-server-filesystem"), str(root)]


def everything_cmd() -> list[str]:
    """@modelcontextprotocol/server-everything on stdio."""
    return [str(NODE_BIN / "mcp-server-everything"), "stdio"]


def our_server_cmd() -> list[str]:
    """Our own latch-test-server."""
    return [TEST_SERVER]


def via_shim(name: str, server_cmd: list[str], autostart: bool = True) -> list[str]:
    """The command an agent's config holds once Latch is installed.

    `autostart=False` for a test that stops or kills the daemon and starts
    its own again: a shim that lost its daemon starts one by itself once,
    which would race the test's own (`already running`)."""
    alone = [] if autostart else ["--no-autostart"]
    return [LATCH_BIN, "shim", "--name", name, *alone, "--", *server_cmd]


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str

    def __str__(self) -> str:
        return f"pid {self.pid} (parent {self.ppid}): {self.cmdline}"


def processes_with_env(name: str, value: str) -> list[Proc]:
    """Live processes whose environment has NAME=VALUE (zombies have none)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            if needle not in environ:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            # Fields after the parenthesised command: state, ppid, ...
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state == "Z":
                continue
            found.append(Proc(int(entry.name), int(ppid), cmdline))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return found


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Polls PREDICATE until it returns something truthy; returns it, or None at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> int:
    """SIGTERM, wait GRACE seconds, then SIGKILL; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


# ---------------------------------------------------------------- a test's home


class Home:
    """One test's folder `path`: `latch_home` (its LATCH_HOME: policy, socket,
    database), `work` for the files its tool calls touch, `logs` for the
    output of every process it starts, `record_path` for latch-test-server's
    record.

    The folder is made under /tmp with a short name: the daemon's socket lives
    at LATCH_HOME/run/latch.sock and a path too long for `sun_path` would fall
    back to a folder shared by every test.
    """

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="lt-", dir="/tmp"))
        # LATCH_HOME is a folder of its own: Latch denies any tool call that
        # touches it (self-protection), so test files live beside it.
        self.latch_home = self.path / "latch"
        self.latch_home.mkdir()
        self.record_path = self.path / "server-record.jsonl"
        self.logs = self.path / "logs"
        self.logs.mkdir()
        self._log_count = 0
        # The approval PIN once `set_pin` set one: `approve` then passes it
        # on stdin (`--pin-stdin`), as a person's own script would.
        self.pin: str | None = None

    def __str__(self) -> str:
        return str(self.path)

    @property
    def work(self) -> Path:
        """Where tool calls' files go: beside LATCH_HOME, never inside it."""
        return self.path

    @property
    def socket(self) -> Path:
        return self.latch_home / "run" / "latch.sock"

    def server_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """What a client config's `env` holds for a server: our home and record file."""
        env = {"LATCH_HOME": str(self.latch_home), "LATCH_TEST_RECORD": str(self.record_path)}
        if "RUST_BACKTRACE" in os.environ:
            env["RUST_BACKTRACE"] = os.environ["RUST_BACKTRACE"]
        env.update(extra or {})
        return env

    def agent_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The whole environment an agent gives a server it spawns."""
        env = {k: os.environ[k] for k in AGENT_ENV_KEYS if k in os.environ}
        env.update(self.server_env(extra))
        return env

    def cli_env(self) -> dict[str, str]:
        """Environment of a `latch` command a person types in a terminal."""
        return {**os.environ, "LATCH_HOME": str(self.latch_home)}

    def new_log(self, what: str) -> Path:
        self._log_count += 1
        return self.logs / f"{self._log_count:02d}-{what}.log"

    def write_policy(self, text: str) -> None:
        (self.latch_home / "policy.toml").write_text(text)

    def processes(self) -> list[Proc]:
        return processes_with_env("LATCH_HOME", str(self.latch_home))

    # -- the record our test server keeps of every tools/call that reached it

    def recorded(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.record_path.exists():
            return []
        lines = self.record_path.read_text().splitlines()
        calls = [json.loads(line) for line in lines if line.strip()]
        return [c for c in calls if name is None or c["name"] == name]

    # -- the CLI

    def latch(
        self, *args: str, check: bool = True, timeout: float = 15.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [LATCH_BIN, *args],
            env=self.cli_env(),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`latch {' '.join(args)}` exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def latch_json(self, *args: str) -> Any:
        out = self.latch(*args).stdout
        try:
            return json.loads(out)
        except json.JSONDecodeError as err:
            raise AssertionError(f"`latch {' '.join(args)}` printed no JSON: {err}\n{out}") from None

    def pending(self) -> list[dict[str, Any]]:
        return self.latch_json("pending", "--json")

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.latch_json("audit", "--json", "--limit", str(limit))

    def wait_pending(
        self, *, tool: str | None = None, server: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first pending approval for TOOL (and SERVER), waiting up to TIMEOUT."""

        def find() -> dict[str, Any] | None:
            for entry in self.pending():
                if (tool is None or entry.get("tool") == tool) and (server is None or entry.get("server") == server):
                    return entry
            return None

        entry = wait_until(find, timeout, interval=0.1)
        if entry is None:
            raise AssertionError(f"no pending approval for tool {tool!r} within {timeout}s: {self.pending()}")
        return entry

    def set_pin(self, pin: str) -> None:
        """`latch pin set --pin-stdin` (the old PIN first when one is set)."""
        lines = ([self.pin] if self.pin else []) + [pin]
        self.latch("pin", "set", "--pin-stdin", input="".join(f"{line}\n" for line in lines), timeout=60)
        self.pin = pin

    def approve(self, approval_id: Any, scope: str = "once") -> None:
        if self.pin is None:
            self.latch("approve", str(approval_id), "--scope", scope)
        else:
            args = ("approve", str(approval_id), "--scope", scope, "--pin-stdin")
            self.latch(*args, input=self.pin + "\n", timeout=60)

    def deny(self, approval_id: Any, reason: str | None = None) -> None:
        args = ["deny", str(approval_id)]
        if reason is not None:
            args += ["--reason", reason]
        self.latch(*args)

    def dump_logs(self) -> str:
        parts = []
        for log in sorted(self.logs.iterdir()):
            text = log.read_text(errors="replace")
            parts.append(f"----- {log.name} ({len(text)} chars) -----\n{text[-8000:]}")
        return "\n".join(parts)


class Daemon:
    """`latch daemon` in the foreground, as a user would run it."""

    def __init__(self, home: Home, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.log_path = home.new_log("daemon")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [LATCH_BIN, "daemon"],
            env={**home.cli_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"`latch daemon` exited with {self.proc.returncode} before answering:\n{self.log()}"
                )
            status = subprocess.run(
                [LATCH_BIN, "status", "--json"],
                env=self.home.cli_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
            )
            if status.returncode == 0:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"`latch status --json` did not succeed within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, SIGKILL after 5 s; returns the exit status."""
        try:
            return stop_process(self.proc, grace=5.0)
        finally:
            self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


# ---------------------------------------------------------------- MCP clients


async def fake_sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    """A stand-in LLM: answers every sampling request with the same text."""
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the test client"),
        model="latch-test-model",
        stop_reason="endTurn",
    )


async def accepting_elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    """A user who fills in the form: name Ada, terms accepted."""
    return types.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True})


TEST_ROOTS = [types.Root(uri="file:///tmp/latch-test-root", name="latch test root")]


async def fixed_roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=TEST_ROOTS)


@asynccontextmanager
async def mcp_session(
    home: Home,
    cmd: list[str],
    *,
    sampling: bool = False,
    elicitation: bool = False,
    roots: bool = False,
    message_handler: Any = None,
    extra_env: dict[str, str] | None = None,
    init_timeout: float = 20.0,
    cwd: Path | None = None,
    roots_callback: Any = None,
) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession over stdio to CMD, the way agents spawn servers.

    SAMPLING, ELICITATION and ROOTS register the canned callbacks above, so the
    client advertises those capabilities.
    """
    log_path = home.new_log("client-" + Path(cmd[0]).name)
    with open(log_path, "w") as errlog:
        # Agents start a server in the project folder: the test's folder is
        # its working directory, so its writes are inside the workspace.
        params = StdioServerParameters(
            command=cmd[0], args=cmd[1:], env=home.server_env(extra_env), cwd=str(cwd or home.work)
        )
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(
                read,
                write,
                read_timeout_seconds=CALL_TIMEOUT,
                sampling_callback=fake_sampling if sampling else None,
                elicitation_callback=accepting_elicitation if elicitation else None,
                list_roots_callback=roots_callback or (fixed_roots if roots else None),
                message_handler=message_handler,
            ) as session:
                with anyio.fail_after(init_timeout):
                    await session.initialize()
                yield session


async def list_all_tools(session: ClientSession) -> list[dict[str, Any]]:
    """Every tool, following nextCursor, as JSON-like dicts."""
    tools: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools += [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise AssertionError("tools/list never stopped handing out cursors")


async def wait_for_tools(session: ClientSession, names: Iterable[str], timeout: float = 10.0) -> list[dict[str, Any]]:
    """Lists tools until NAMES are all there (server-everything registers some after `initialized`)."""
    wanted = set(names)
    with anyio.fail_after(timeout):
        while True:
            tools = await list_all_tools(session)
            if wanted <= {t["name"] for t in tools}:
                return tools
            await anyio.sleep(0.1)


def result_json(result: types.CallToolResult) -> dict[str, Any]:
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


# ---------------------------------------------------------------- raw wire client


class TmuxServer:
    """A private tmux server (`tmux -S HOME/tmux.sock`) for driving a real
    terminal: a user's own tmux is never touched."""

    def __init__(self, home: Home) -> None:
        self.socket = home.path / "tmux.sock"
        self.env = {k: v for k, v in home.cli_env().items() if k not in ("TMUX", "TMUX_PANE")}
        self.env.setdefault("LANG", "C.UTF-8")
        self.env["TERM"] = "xterm-256color"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def kill(self) -> None:
        if self.socket.exists():
            self.run("kill-server", check=False)
        self.socket.unlink(missing_ok=True)


class WireClient:
    """A bare-bones stdio MCP client speaking raw JSON lines, for what the SDK hides:
    exact ids, error responses, malformed input, and closing the pipes at will."""

    def __init__(self, home: Home, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
        self.log_path = home.new_log("wire-" + Path(cmd[0]).name)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            cmd,
            env=home.agent_env(extra_env),
            cwd=home.work,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        self._next_id = 1
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                try:
                    self._inbox.put(json.loads(line))
                except json.JSONDecodeError:
                    self._inbox.put({"__unparsable__": line.decode(errors="replace")})
        except (ValueError, OSError):
            pass  # the test closed the pipe while this thread was reading it
        self._inbox.put(None)

    def send_line(self, text: str | bytes) -> None:
        assert self.proc.stdin is not None
        data = text.encode() if isinstance(text, str) else text
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message))

    def request(self, method: str, params: dict[str, Any] | None = None) -> int:
        request_id = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The next message matching PREDICATE (others are kept in `received`)."""
        for message in self.received:
            if predicate(message):
                self.received.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message within {timeout}s; received {self.received}")
            try:
                message = self._inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if message is None:
                self._inbox.put(None)  # stays closed for later waits
                raise AssertionError(f"the server closed stdout; received {self.received}")
            if predicate(message):
                return message
            self.received.append(message)

    def response(self, request_id: Any, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait_for(
            lambda m: m.get("id") == request_id and "method" not in m and ("result" in m or "error" in m),
            timeout,
        )

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        return self.response(self.request(method, params), timeout)

    def initialize(self, version: str = "2025-11-25", capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.call(
            "initialize",
            {
                "protocolVersion": version,
                "capabilities": capabilities or {},
                "clientInfo": {"name": "latch-wire-test", "version": "0"},
            },
            timeout=20.0,
        )
        self.notify("notifications/initialized")
        return answer

    def eof(self, timeout: float = 10.0) -> bool:
        """Waits for the peer to close its stdout; True if it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if message is None:
                self._inbox.put(None)
                return True
            self.received.append(message)
        return False

    def close_stdin(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def close(self) -> int:
        """The way SDK clients shut a server down: close stdin, wait, SIGTERM, SIGKILL."""
        self.close_stdin()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, grace=2.0)
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


class Approver(threading.Thread):
    """Answers one pending approval from another thread, as a person at a console would."""

    def __init__(
        self,
        home: Home,
        *,
        tool: str,
        action: str = "approve",
        scope: str = "once",
        reason: str | None = None,
        timeout: float = 20.0,
    ) -> None:
        super().__init__(daemon=True)
        self.home, self.tool, self.action, self.scope, self.reason, self.timeout = (
            home,
            tool,
            action,
            scope,
            reason,
            timeout,
        )
        self.entry: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.entry = self.home.wait_pending(tool=self.tool, timeout=self.timeout)
            if self.action == "approve":
                self.home.approve(self.entry["id"], self.scope)
            else:
                self.home.deny(self.entry["id"], self.reason)
        except BaseException as err:  # reported by outcome()
            self.error = err

    def outcome(self, timeout: float = 30.0) -> dict[str, Any]:
        """The pending entry it answered; raises what went wrong in the thread."""
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the approver thread did not finish")
        if self.error is not None:
            raise self.error
        assert self.entry is not None
        return self.entry


class AutoApprover(threading.Thread):
    """Approves every pending call of SERVER until stopped: for relay tests whose
    point is the protocol round trip, not the classification of the tool."""

    def __init__(self, home: Home, server: str) -> None:
        super().__init__(daemon=True)
        self.home, self.server = home, server
        self.approved: list[dict[str, Any]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.1):
            try:
                for entry in self.home.pending():
                    if entry.get("server") == self.server:
                        self.home.approve(entry["id"], "once")
                        self.approved.append(entry)
            except (AssertionError, subprocess.TimeoutExpired):
                continue  # daemon busy or answered meanwhile: try again

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def __enter__(self) -> AutoApprover:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
