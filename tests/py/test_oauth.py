"""OAuth 2.1 for remote MCP servers, end to end: the real `latch` binary
against our OAuth-protected MCP server (tests/py/oauth_server.py, the
official SDK's streamable HTTP server behind a bearer check, plus an
authorization server), on 127.0.0.1.

The person's browser step is done by the test: it reads the address
`latch auth login` prints on stderr, GETs it with redirects off (the
authorization server "consents" and redirects with a code), then GETs the
redirect target, which is Latch's localhost callback.

Until `latch shim --url` exists, requests go through `latch auth probe`, a
hidden command that does what the bridge does for one request (the
session's header; on a 401, refresh and retry once).
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from latchkit import LATCH_BIN, Home
from oauth_server import SCOPE, OAuthServer

NAME = "remote-notes"


@pytest.fixture
def server() -> Iterator[OAuthServer]:
    with OAuthServer() as srv:
        yield srv


def http_get(url: str) -> tuple[int, dict[str, str], str]:
    """One GET, no redirects followed."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", urlunsplit(("", "", parts.path, parts.query, "")))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
    finally:
        conn.close()


class Login:
    """A running `latch auth login`, its stderr read up to the address."""

    def __init__(self, home: Home, url: str, name: str = NAME, extra: list[str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [LATCH_BIN, "auth", "login", name, "--url", url, "--no-browser", *(extra or [])],
            env=home.cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.err_lines: list[str] = []

    def address(self) -> str | None:
        """The authorization address, or None when latch ended first."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err_lines.append(line)
            if line.startswith("latch: authorize: "):
                return line.removeprefix("latch: authorize: ").strip()
        return None

    def finish(self, timeout: float = 15.0) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, "".join(self.err_lines) + err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def logins() -> Iterator[list[Login]]:
    started: list[Login] = []
    yield started
    for login in started:
        login.kill()


def consent(address: str) -> str:
    """The person approves in the browser: the redirect to Latch's callback."""
    status, headers, body = http_get(address)
    assert status == 302, (status, body)
    return headers["location"]


def login_ok(home: Home, server: OAuthServer, logins: list[Login], name: str = NAME) -> tuple[str, str]:
    login = Login(home, server.url, name)
    logins.append(login)
    address = login.address()
    assert address, login.finish()
    status, _, body = http_get(consent(address))
    assert status == 200, body
    code, out, err = login.finish()
    assert code == 0, (out, err)
    return out, err


def token_file(home: Home, name: str = NAME) -> Path:
    return home.latch_home / "oauth" / f"{name}.json"


def assert_no_token_in(server: OAuthServer, *texts: str) -> None:
    for token in server.seen.issued:
        for text in texts:
            assert token not in text


def probe(home: Home, url: str, name: str = NAME) -> subprocess.CompletedProcess[str]:
    return home.latch("auth", "probe", name, "--url", url, check=False)


def test_login_discovers_registers_and_stores_private_tokens(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    out, err = login_ok(home, server, logins)
    # Discovery went through the 401's resource_metadata and the issuer's
    # path-inserted metadata; a client was registered for the callback.
    assert len(server.seen.registrations) == 1
    reg = server.seen.registrations[0]
    assert reg["token_endpoint_auth_method"] == "none"
    [redirect] = reg["redirect_uris"]
    assert redirect.startswith("http://127.0.0.1:") and redirect.endswith("/callback")
    [auth] = server.seen.authorize
    assert auth["code_challenge_method"] == "S256" and len(auth["code_challenge"]) == 43
    assert auth["resource"] == server.url
    assert auth["scope"] == SCOPE
    assert len(auth["state"]) >= 22
    assert server.seen.grants == ["authorization_code"]

    # Stored private: 0600 in a 0700 folder, nothing else left there.
    path = token_file(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]

    # `auth list` shows the server, its expiry and scopes, never a token.
    listed = home.latch("auth", "list")
    assert NAME in listed.stdout and server.url in listed.stdout and SCOPE in listed.stdout
    assert "expires in" in listed.stdout and "refreshable" in listed.stdout
    [row] = home.latch_json("auth", "list", "--json")
    assert row["name"] == NAME and row["url"] == server.url and row["scope"] == SCOPE

    # A request through the session carries the token and succeeds.
    probed = probe(home, server.url)
    assert probed.stdout.strip() == "200", probed
    assert server.seen.mcp_ok == 1
    assert server.seen.authorizations[-1] == f"Bearer {server.seen.issued[0]}"
    assert_no_token_in(server, out, err, listed.stdout, listed.stderr, probed.stdout, probed.stderr)


def test_refresh_before_expiry(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    server.access_ttl = 3
    login_ok(home, server, logins)
    [row] = home.latch_json("auth", "list", "--json")
    # Wait out the access token's life (the server enforces it too).
    time.sleep(max(0.0, row["expires_at"] - time.time()) + 0.2)
    probed = probe(home, server.url)
    assert probed.stdout.strip() == "200", probed
    # Refreshed before the request: the server never saw the stale token.
    assert server.seen.grants == ["authorization_code", "refresh_token"]
    assert server.seen.unauthorized == 1  # `login`'s own probe only
    assert server.seen.authorizations == [f"Bearer {server.seen.issued[2]}"]
    assert_no_token_in(server, probed.stdout, probed.stderr)


def test_401_mid_session_refreshes_then_retries_once(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    login_ok(home, server, logins)
    server.expire_access_tokens()
    probed = probe(home, server.url)
    assert probed.stdout.strip() == "200", probed
    assert server.seen.grants == ["authorization_code", "refresh_token"]
    assert server.seen.unauthorized == 2  # login's probe, then the revoked token
    # The refresh token rotated; the new one is stored.
    assert server.seen.issued[3] in token_file(home).read_text()

    # When refresh fails too, the shim-side session does not loop or guess:
    # it says a person must log in.
    server.expire_access_tokens()
    server.reject_refresh = True
    probed = probe(home, server.url)
    assert probed.returncode != 0
    assert "needs a person to authorize it" in probed.stderr, probed
    # Text that may reach the agent names no command to run.
    assert "latch auth" not in probed.stderr
    assert_no_token_in(server, probed.stdout, probed.stderr)


def test_issuer_mismatch_in_the_callback_is_refused(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    """RFC 9207: a response naming another issuer is a mix-up attack."""
    for mode in ("wrong", "absent"):
        server.iss_mode = mode
        login = Login(home, server.url)
        logins.append(login)
        address = login.address()
        assert address
        status, _, body = http_get(consent(address))
        assert status == 400 and "issuer" in body, body
        code, _, err = login.finish()
        assert code != 0 and "issuer" in err, err
    assert server.seen.grants == []
    assert not token_file(home).exists()


def test_state_mismatch_is_ignored_and_the_real_answer_still_counts(
    home: Home, server: OAuthServer, logins: list[Login]
) -> None:
    login = Login(home, server.url)
    logins.append(login)
    address = login.address()
    assert address
    callback = consent(address)
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = urlunsplit(parts._replace(query=urlencode({**query, "state": "forged"})))
    status, _, body = http_get(forged)
    assert status == 400 and "state" in body
    # A forged code with no state at all: ignored as well.
    status, _, _ = http_get(urlunsplit(parts._replace(query="code=attacker")))
    assert status == 400
    status, _, _ = http_get(callback)
    assert status == 200
    code, out, err = login.finish()
    assert code == 0, (out, err)
    assert server.seen.grants == ["authorization_code"]


def test_authorization_server_without_s256_is_refused(home: Home, server: OAuthServer) -> None:
    for methods in (None, ["plain"]):
        server.pkce_methods = methods
        done = home.latch("auth", "login", NAME, "--url", server.url, "--no-browser", check=False)
        assert done.returncode != 0
        assert "S256" in done.stderr and "authorize:" not in done.stderr
    assert server.seen.registrations == [] and server.seen.authorize == []


def test_metadata_for_another_resource_or_issuer_is_refused(home: Home, server: OAuthServer) -> None:
    server.prm_resource = "http://127.0.0.1:1/mcp"
    done = home.latch("auth", "login", NAME, "--url", server.url, "--no-browser", check=False)
    assert done.returncode != 0 and "another resource" in done.stderr, done.stderr
    server.prm_resource = f"{server.base}/other"
    done = home.latch("auth", "login", NAME, "--url", server.url, "--no-browser", check=False)
    assert done.returncode != 0 and "another resource" in done.stderr, done.stderr
    server.prm_resource = None
    server.metadata_issuer = "http://127.0.0.1:1/as"
    done = home.latch("auth", "login", NAME, "--url", server.url, "--no-browser", check=False)
    assert done.returncode != 0 and "another issuer" in done.stderr, done.stderr
    assert server.seen.registrations == []


def test_tokens_never_go_to_another_url_under_the_same_name(
    home: Home, server: OAuthServer, logins: list[Login]
) -> None:
    """A config that points NAME at another server must not receive NAME's tokens."""
    login_ok(home, server, logins)
    with OAuthServer() as other:
        probed = probe(home, other.url)
        assert probed.returncode != 0
        assert other.seen.authorizations == []
        assert_no_token_in(server, probed.stdout, probed.stderr)
    assert server.seen.issued[0] not in "".join(other.seen.authorizations)


def test_logout_revokes_and_deletes(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    login_ok(home, server, logins)
    access, refresh = server.seen.issued[:2]
    done = home.latch("auth", "logout", NAME)
    assert "revoked and deleted" in done.stdout
    assert sorted(server.seen.revoked) == sorted([access, refresh])
    assert not token_file(home).exists()
    assert "no OAuth tokens stored" in home.latch("auth", "list").stdout
    assert home.latch("auth", "logout", NAME, check=False).returncode == 1
    assert_no_token_in(server, done.stdout, done.stderr)
    # A damaged record: not used, not listed, and logout still removes it.
    token_file(home).write_text("{not json")
    assert probe(home, server.url).returncode != 0
    assert server.seen.authorizations == []
    assert "no OAuth tokens stored" in home.latch("auth", "list").stdout
    assert "deleted" in home.latch("auth", "logout", NAME).stdout
    assert not token_file(home).exists()


def test_odd_names_stay_inside_the_token_folder(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    login_ok(home, server, logins, name="../../escape")
    files = list((home.latch_home / "oauth").iterdir())
    assert len(files) == 1 and files[0].name.startswith("h-")
    assert not (home.path / "escape.json").exists()
    assert home.latch_json("auth", "list", "--json")[0]["name"] == "../../escape"
    assert os.listdir(home.latch_home / "oauth") == [files[0].name]


def test_expired_and_unrefreshable_asks_for_a_person(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    """An access token past its expiry whose refresh fails is not sent, and
    the 401 that follows reaches "needs authorization" (no retry loop)."""
    server.access_ttl = 2
    login_ok(home, server, logins)
    [row] = home.latch_json("auth", "list", "--json")
    time.sleep(max(0.0, row["expires_at"] - time.time()) + 0.2)
    server.reject_refresh = True
    probed = probe(home, server.url)
    assert probed.returncode != 0
    assert "needs a person to authorize it" in probed.stderr, probed
    assert server.seen.authorizations == []


def test_two_shims_refreshing_at_once_spend_the_refresh_token_once(
    home: Home, server: OAuthServer, logins: list[Login]
) -> None:
    """The server rotates refresh tokens: two processes refreshing with the
    same one would leave one of them without tokens. The second waits on
    the record's lock and takes the first one's result."""
    login_ok(home, server, logins)
    server.expire_access_tokens()
    server.refresh_delay = 1.0
    procs = [
        subprocess.Popen(
            [LATCH_BIN, "auth", "probe", NAME, "--url", server.url],
            env=home.cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=20) for p in procs]
    assert [out.strip() for out, _ in results] == ["200", "200"], results
    assert server.seen.grants == ["authorization_code", "refresh_token"]
    assert server.seen.token_errors == []


def test_first_401_runs_the_browser_step_then_retries(home: Home, server: OAuthServer) -> None:
    """What the shim does with no tokens yet: the 401 starts discovery and
    the browser step (address on stderr), and the request is retried."""
    proc = subprocess.Popen(
        [LATCH_BIN, "auth", "probe", NAME, "--url", server.url, "--login"],
        env=home.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        address = None
        for line in proc.stderr:
            if line.startswith("latch: authorize: "):
                address = line.removeprefix("latch: authorize: ").strip()
                break
        assert address
        status, _, _ = http_get(consent(address))
        assert status == 200
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and out.strip() == "200", (out, err)
    assert server.seen.unauthorized == 1 and server.seen.mcp_ok == 1
    assert token_file(home).exists()
    assert_no_token_in(server, out, err)


def test_a_client_registered_beforehand_when_the_server_has_no_registration(
    home: Home, server: OAuthServer, logins: list[Login]
) -> None:
    server.registration = False
    done = home.latch("auth", "login", NAME, "--url", server.url, "--no-browser", check=False)
    assert done.returncode != 0 and "no dynamic client registration" in done.stderr, done.stderr
    client_id = server.add_client()
    login = Login(home, server.url, extra=["--client-id", client_id])
    logins.append(login)
    address = login.address()
    assert address and f"client_id={client_id}" in address
    status, _, _ = http_get(consent(address))
    assert status == 200
    code, out, err = login.finish()
    assert code == 0, (out, err)
    # Kept for this server: the next browser step (a later login, or the
    # shim's on a 401 that refresh cannot cure) reuses it untold.
    server.expire_access_tokens()
    server.reject_refresh = True
    login = Login(home, server.url)
    logins.append(login)
    address = login.address()
    assert address and f"client_id={client_id}" in address
    assert server.seen.registrations == []


def test_insufficient_scope_steps_up_once(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    """A 403 scope challenge: a new browser step for the granted scopes plus
    the new one, then the retry; a server that keeps asking for scopes it
    already got gets no second prompt."""
    login_ok(home, server, logins)
    server.required_scope = "mcp:admin"
    proc = subprocess.Popen(
        [LATCH_BIN, "auth", "probe", NAME, "--url", server.url, "--login"],
        env=home.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        address = None
        for line in proc.stderr:
            if line.startswith("latch: authorize: "):
                address = line.removeprefix("latch: authorize: ").strip()
                break
        assert address
        status, _, _ = http_get(consent(address))
        assert status == 200
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out.strip() == "200", (out, err)
    assert server.seen.authorize[-1]["scope"] == f"{SCOPE} mcp:admin"
    assert f"{SCOPE} mcp:admin" in home.latch("auth", "list").stdout

    # Asking again for scopes already granted: no new prompt (it could only
    # loop), the 403 goes through.
    server.always_forbid = True
    before = len(server.seen.authorize)
    trapped = home.latch("auth", "probe", NAME, "--url", server.url, "--login", check=False)
    assert trapped.stdout.strip() == "403", trapped
    assert "authorize:" not in trapped.stderr
    assert len(server.seen.authorize) == before


def test_a_2025_03_26_server_without_resource_metadata(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    """No protected-resource metadata: the authorization server's metadata
    at the server's own origin, the resource the server's URL."""
    server.legacy = True
    login_ok(home, server, logins)
    [auth] = server.seen.authorize
    assert auth["resource"] == server.url and "scope" not in auth
    assert probe(home, server.url).stdout.strip() == "200"


def test_a_server_refusing_what_was_just_granted_gets_no_second_prompt(home: Home, server: OAuthServer) -> None:
    """A server that 401s every token, with refresh failing too, would make
    the shim open a browser step on every request; one per minute at most."""
    server.reject_all = True
    server.reject_refresh = True
    proc = subprocess.Popen(
        [LATCH_BIN, "auth", "probe", NAME, "--url", server.url, "--login", "--count", "2"],
        env=home.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        address = None
        for line in proc.stderr:
            if line.startswith("latch: authorize: "):
                address = line.removeprefix("latch: authorize: ").strip()
                break
        assert address
        status, _, _ = http_get(consent(address))
        assert status == 200
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert out.split() == ["401"], (out, err)
    assert "will not ask them again" in err and "authorize:" not in err
    assert len(server.seen.authorize) == 1


def test_the_first_usable_authorization_server_is_taken(home: Home, server: OAuthServer, logins: list[Login]) -> None:
    """Metadata naming several: one that does not answer and one with no
    metadata are passed over (RFC 9728 §7.6 leaves the choice to the client)."""
    server.issuers_before = ["http://127.0.0.1:1/as", f"{server.base}/missing"]
    login_ok(home, server, logins)
    [row] = home.latch_json("auth", "list", "--json")
    assert row["issuer"] == server.issuer
