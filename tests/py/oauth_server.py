"""An OAuth-protected MCP server for Latch's tests, on 127.0.0.1 only.

One process plays both parts of MCP authorization:

- the protected resource: the official SDK's streamable HTTP server at
  `/mcp` (JSON responses, stateless), behind a bearer check that answers
  401 with `WWW-Authenticate: Bearer resource_metadata=…, scope=…`, and its
  protected-resource metadata (RFC 9728) at the path-inserted well-known URL;
- the authorization server, issuer `<base>/as`: metadata (RFC 8414, path
  inserted), dynamic registration (RFC 7591), an authorize endpoint that
  redirects at once with a code (the "person" always consents), a token
  endpoint that checks PKCE S256, `redirect_uri`, `resource` and client,
  refresh with rotation, short-lived access tokens, and revocation (RFC 7009).

Knobs (attributes) let a test make it misbehave the way a hostile or broken
server would. Everything it saw is recorded for the test to check.

    with OAuthServer(access_ttl=3) as srv:
        srv.url  # http://127.0.0.1:PORT/mcp
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

SCOPE = "mcp:tools"


@dataclass
class Grant:
    client_id: str
    resource: str
    scope: str
    refresh: str


@dataclass
class Seen:
    """What reached the server."""

    # Every Authorization header value sent to /mcp.
    authorizations: list[str] = field(default_factory=list)
    unauthorized: int = 0
    forbidden: int = 0
    mcp_ok: int = 0
    registrations: list[dict[str, Any]] = field(default_factory=list)
    authorize: list[dict[str, str]] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)  # grant types that succeeded
    token_errors: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    # Every access and refresh token handed out.
    issued: list[str] = field(default_factory=list)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OAuthServer:
    def __init__(self, access_ttl: int = 3600) -> None:
        self.access_ttl = access_ttl
        # Knobs.
        self.pkce_methods: list[str] | None = ["S256"]
        self.advertise_iss = True
        self.iss_mode = "right"  # "right", "wrong" or "absent" in the redirect
        self.metadata_issuer: str | None = None  # claim another issuer in metadata
        self.prm_resource: str | None = None  # name another resource in the PRM
        self.reject_refresh = False
        self.refresh_delay = 0.0  # seconds a refresh request is held
        self.registration = True  # offer dynamic client registration
        self.required_scope: str | None = None  # a scope /mcp needs beyond SCOPE
        self.always_forbid = False  # 403 insufficient_scope whatever the token has
        # MCP 2025-03-26: no protected-resource metadata, the authorization
        # server's metadata at the origin (issuer = base).
        self.legacy = False
        self.reject_all = False  # /mcp refuses every token (401 invalid_token)
        self.issuers_before: list[str] = []  # listed in the PRM before ours
        self.seen = Seen()
        self._clients: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, tuple[float, str, str]] = {}  # token -> (expiry, resource, scope)
        self._refresh: dict[str, Grant] = {}
        self._lock = threading.Lock()

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/mcp"
        self.issuer = f"{self.base}/as"
        self.prm_url = f"{self.base}/.well-known/oauth-protected-resource/mcp"

        mcp = MCPServer("oauth-test")

        @mcp.tool()
        def echo(text: str) -> str:
            """Echo the text back."""
            return text

        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"127.0.0.1:{self.port}"],
            allowed_origins=[self.base],
        )
        self._mcp_app = mcp.streamable_http_app(
            streamable_http_path="/mcp", json_response=True, stateless_http=True, transport_security=security
        )
        config = uvicorn.Config(self._asgi, log_level="warning", lifespan="on", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> OAuthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    # -- test helpers

    def add_client(self) -> str:
        """A client registered beforehand: any loopback redirect port (RFC 8252 §7.3)."""
        client_id = "pre-" + secrets.token_hex(8)
        with self._lock:
            self._clients[client_id] = {"redirect_uris": [], "loopback_any_port": True}
        return client_id

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (refresh tokens stay)."""
        with self._lock:
            self._access.clear()

    # -- ASGI

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._mcp_app(scope, receive, send)
            return
        request = Request(scope, receive)
        path = scope["path"]
        handler = {
            "/.well-known/oauth-protected-resource/mcp": self._prm,
            "/.well-known/oauth-authorization-server": self._legacy_asm,
            "/.well-known/oauth-authorization-server/as": self._asm,
            "/as/register": self._register,
            "/as/authorize": self._authorize,
            "/as/token": self._token,
            "/as/revoke": self._revoke,
        }.get(path)
        if handler is not None:
            response = await handler(request)
            await response(scope, receive, send)
            return
        if path.startswith("/mcp"):
            auth = request.headers.get("authorization")
            if auth is not None:
                self.seen.authorizations.append(auth)
            if not self._valid(auth):
                self.seen.unauthorized += 1
                challenge = f'Bearer resource_metadata="{self.prm_url}", scope="{SCOPE}"'
                if self.legacy:
                    challenge = "Bearer"
                if auth is not None:
                    challenge += ', error="invalid_token"'
                response = JSONResponse({"error": "unauthorized"}, 401, headers={"WWW-Authenticate": challenge})
                await response(scope, receive, send)
                return
            lacking = self.required_scope and self.required_scope not in self._scope_of(auth).split()
            if lacking or self.always_forbid:
                self.seen.forbidden += 1
                challenge = (
                    f'Bearer error="insufficient_scope", scope="{SCOPE} {self.required_scope}", '
                    f'resource_metadata="{self.prm_url}"'
                )
                response = JSONResponse({"error": "insufficient_scope"}, 403, headers={"WWW-Authenticate": challenge})
                await response(scope, receive, send)
                return
            self.seen.mcp_ok += 1
        await self._mcp_app(scope, receive, send)

    def _scope_of(self, auth: str | None) -> str:
        with self._lock:
            entry = self._access.get((auth or "")[len("Bearer ") :])
        return entry[2] if entry else ""

    def _valid(self, auth: str | None) -> bool:
        if not auth or not auth.startswith("Bearer "):
            return False
        with self._lock:
            entry = self._access.get(auth[len("Bearer ") :])
        return entry is not None and entry[0] > time.time() and entry[1] == self.url and not self.reject_all

    # -- metadata

    async def _prm(self, request: Request) -> Response:
        if self.legacy:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse(
            {
                "resource": self.prm_resource or self.url,
                "authorization_servers": [*self.issuers_before, self.issuer],
                "scopes_supported": [SCOPE],
                "bearer_methods_supported": ["header"],
            }
        )

    async def _legacy_asm(self, request: Request) -> Response:
        if not self.legacy:
            return JSONResponse({"error": "not found"}, 404)
        response = self._asm_doc()
        meta = json.loads(bytes(response.body))
        meta["issuer"] = self.base
        return JSONResponse(meta)

    async def _asm(self, request: Request) -> Response:
        if self.legacy:
            return JSONResponse({"error": "not found"}, 404)
        return self._asm_doc()

    def _asm_doc(self) -> Response:
        meta: dict[str, Any] = {
            "issuer": self.metadata_issuer or self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "revocation_endpoint": f"{self.issuer}/revoke",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "authorization_response_iss_parameter_supported": self.advertise_iss,
            "scopes_supported": [SCOPE],
        }
        if self.registration:
            meta["registration_endpoint"] = f"{self.issuer}/register"
        if self.pkce_methods is not None:
            meta["code_challenge_methods_supported"] = self.pkce_methods
        return JSONResponse(meta)

    # -- authorization server

    async def _register(self, request: Request) -> Response:
        body = await request.json()
        self.seen.registrations.append(body)
        uris = body.get("redirect_uris") or []
        if not uris or not all(u.startswith("http://127.0.0.1:") for u in uris):
            return JSONResponse({"error": "invalid_redirect_uri"}, 400)
        client_id = "client-" + secrets.token_hex(8)
        with self._lock:
            self._clients[client_id] = {"redirect_uris": uris}
        return JSONResponse(
            {"client_id": client_id, "redirect_uris": uris, "token_endpoint_auth_method": "none"}, 201
        )

    async def _authorize(self, request: Request) -> Response:
        q = dict(request.query_params)
        self.seen.authorize.append(q)
        client = self._clients.get(q.get("client_id", ""))
        redirect = q.get("redirect_uri", "")
        loopback = redirect.startswith("http://127.0.0.1:") and redirect.endswith("/callback")
        if client is None or not (redirect in client["redirect_uris"] or (client.get("loopback_any_port") and loopback)):
            return PlainTextResponse("unknown client or redirect_uri", 400)
        if (
            q.get("response_type") != "code"
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
            or q.get("resource") != self.url
        ):
            return PlainTextResponse("bad authorization request", 400)
        code = "code-" + secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {
                "client_id": q["client_id"],
                "redirect_uri": q["redirect_uri"],
                "challenge": q["code_challenge"],
                "resource": q["resource"],
                "scope": q.get("scope", ""),
            }
        params = {"code": code, "state": q.get("state", "")}
        if self.iss_mode == "right":
            params["iss"] = self.base if self.legacy else self.issuer
        elif self.iss_mode == "wrong":
            params["iss"] = "http://127.0.0.1:1/evil"
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode(params), 302)

    def _token_error(self, error: str) -> Response:
        self.seen.token_errors.append(error)
        return JSONResponse({"error": error}, 400)

    def _issue(self, grant: Grant) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = (time.time() + self.access_ttl, grant.resource, grant.scope)
            self._refresh[refresh] = Grant(grant.client_id, grant.resource, grant.scope, refresh)
        self.seen.issued += [access, refresh]
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "refresh_token": refresh,
            "scope": grant.scope,
        }

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        kind = form.get("grant_type")
        if kind == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
            if code is None:
                return self._token_error("invalid_grant")
            if (
                form.get("client_id") != code["client_id"]
                or form.get("redirect_uri") != code["redirect_uri"]
                or _s256(form.get("code_verifier", "")) != code["challenge"]
                or form.get("resource") != code["resource"]
            ):
                return self._token_error("invalid_grant")
            self.seen.grants.append(kind)
            return JSONResponse(self._issue(Grant(code["client_id"], code["resource"], code["scope"], "")))
        if kind == "refresh_token":
            await asyncio.sleep(self.refresh_delay)
            with self._lock:
                grant = self._refresh.get(form.get("refresh_token", ""))
            if (
                self.reject_refresh
                or grant is None
                or grant.client_id != form.get("client_id")
                or form.get("resource") != grant.resource
            ):
                return self._token_error("invalid_grant")
            with self._lock:
                self._refresh.pop(grant.refresh, None)  # rotation
            self.seen.grants.append(kind)
            return JSONResponse(self._issue(grant))
        return self._token_error("unsupported_grant_type")

    async def _revoke(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        token = form.get("token", "")
        with self._lock:
            self._access.pop(token, None)
            self._refresh.pop(token, None)
        self.seen.revoked.append(token)
        return Response(status_code=200)


if __name__ == "__main__":
    with OAuthServer() as srv:
        print(json.dumps({"url": srv.url}), flush=True)
        threading.Event().wait()
