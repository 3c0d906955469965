"""OAuth through the real path: the official Python MCP client over stdio →
`latch shim --url` → the bridge → our OAuth-protected MCP server
(oauth_server.py) on 127.0.0.1, with the daemon deciding every call.

The person's browser is the test: it reads the authorization address the
bridge prints on the shim's stderr and follows it (the authorization server
consents and redirects to Latch's localhost callback).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from latchkit import CALL_TIMEOUT, Daemon, Home
from oauth_server import SCOPE, OAuthServer
from remotekit import via_url
from test_oauth import consent, http_get, token_file

NAME = "notes"
ALLOW_ALL = '[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n'


@pytest.fixture
def server() -> Iterator[OAuthServer]:
    with OAuthServer() as srv:
        yield srv


class Browser:
    """Reads the shim's stderr; follows every authorization address in it
    (consent, then the callback), as the person's browser would."""

    def __init__(self) -> None:
        r, w = os.pipe()
        self.reader = os.fdopen(r, "r", errors="replace")
        self.errlog = os.fdopen(w, "w")
        self.text: list[str] = []
        self.followed: list[str] = []
        self._done = threading.Semaphore(0)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self.reader:
            self.text.append(line)
            if line.startswith("latch: authorize: "):
                address = line.removeprefix("latch: authorize: ").strip()
                status, _, _ = http_get(consent(address))
                self.followed.append(f"{status} {address}")
                self._done.release()

    def wait_followed(self) -> bool:
        """Waits until one more address has been followed to its end."""
        return self._done.acquire(timeout=10)

    def stderr(self) -> str:
        return "".join(self.text)

    def close(self) -> None:
        self.errlog.close()
        self._thread.join(timeout=10)
        self.reader.close()


@asynccontextmanager
async def remote_session(home: Home, url: str, browser: Browser, notes: list[Any]) -> AsyncIterator[ClientSession]:
    async def on_message(message: Any) -> None:
        notes.append(message)

    params = StdioServerParameters(command=via_url(NAME, url)[0], args=via_url(NAME, url)[1:], env=home.server_env())
    async with stdio_client(params, errlog=browser.errlog) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT, message_handler=on_message) as s:
            with anyio.fail_after(30):
                await s.initialize()
            yield s


def text_of(result: Any) -> str:
    assert not result.is_error, result
    return result.content[0].text


def test_oauth_end_to_end_through_the_shim(
    home: Home, start_daemon: Callable[..., Daemon], server: OAuthServer
) -> None:
    daemon = start_daemon(policy=ALLOW_ALL)
    browser = Browser()
    notes: list[Any] = []
    errors: list[str] = []
    secret_word = "recognisable-" + os.urandom(4).hex()

    async def run() -> None:
        async with remote_session(home, server.url, browser, notes) as s:
            # First use: no token; the 401 started the browser step during
            # initialize, and the call works.
            assert browser.wait_followed() and browser.followed[0].startswith("200 "), browser.stderr()
            assert text_of(await s.call_tool("echo", {"text": secret_word})) == secret_word

            # The access token expires mid-session: refreshed, the call
            # retried once, the client sees only the result.
            server.expire_access_tokens()
            assert text_of(await s.call_tool("echo", {"text": "after expiry"})) == "after expiry"
            assert server.seen.grants == ["authorization_code", "refresh_token"]

            # 403 insufficient_scope: a browser step for the granted scopes
            # plus the new one, then the retry.
            server.required_scope = "mcp:admin"
            assert text_of(await s.call_tool("echo", {"text": "admin"})) == "admin"
            assert browser.wait_followed() and len(browser.followed) == 2
            assert server.seen.authorize[-1]["scope"] == f"{SCOPE} mcp:admin"

            # The refresh fails: a clear error, no browser step mid-run, no
            # command named.
            server.expire_access_tokens()
            server.reject_refresh = True
            with pytest.raises(MCPError) as failed:
                await s.call_tool("echo", {"text": "refused"})
            errors.append(str(failed.value))
            assert "needs a person to authorize it again in Latch" in str(failed.value), failed.value
            assert "latch auth" not in str(failed.value)
            assert len(browser.followed) == 2

    try:
        anyio.run(run)
    finally:
        browser.close()
    assert token_file(home, NAME).exists()
    assert server.seen.issued, "no token was issued"

    # No token anywhere the agent, a log reader or the audit could see it.
    audit = b"".join(p.read_bytes() for p in home.latch_home.glob("audit.db*"))
    places = {
        "shim stderr": browser.stderr(),
        "daemon log": daemon.log(),
        "notifications": repr(notes),
        "errors": repr(errors),
    }
    for token in server.seen.issued:
        assert token.encode() not in audit, "a token is in the audit database"
        for where, text in places.items():
            assert token not in text, f"a token is in the {where}"
    # The audit did record the calls (the grep above looked at real rows).
    assert secret_word.encode() in audit
