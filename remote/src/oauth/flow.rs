//! The authorization code flow's network steps: discovery, dynamic client
//! registration (RFC 7591), the authorization URL, the token requests
//! (code and refresh) and revocation (RFC 7009).

use reqwest::{Client, Url};
use serde::Deserialize;

use super::OAuthError;
use super::challenge::Challenge;
use super::discovery::{self, ResourceMetadata, ServerMetadata, check_secure, shown};
use super::net;
use super::pkce::Pkce;
use super::store::{Record, Secret};

/// What discovery found out about one server.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The canonical resource, as the server's metadata spells it.
    pub resource: String,
    pub server: ServerMetadata,
    pub scope: Option<String>,
}

/// From a 401's challenge (or none) to a checked authorization server.
/// `Ok(None)`: the server publishes neither protected-resource metadata
/// nor (the 2025-03-26 way) authorization-server metadata at its origin,
/// so it cannot be authorized by OAuth.
pub async fn discover(
    http: &Client,
    server_url: &Url,
    challenge: Option<&Challenge>,
) -> Result<Option<Discovered>, OAuthError> {
    let local = discovery::is_loopback(server_url);
    let mut candidates = Vec::new();
    if let Some(u) = challenge.and_then(|c| c.resource_metadata.as_deref()) {
        let u = Url::parse(u).map_err(|_| OAuthError::Discovery("resource_metadata is not a URL".into()))?;
        check_secure(&u, "the resource metadata", local)?;
        candidates.push(u);
    }
    candidates.extend(discovery::resource_metadata_urls(server_url));
    let mut prm: Option<ResourceMetadata> = None;
    for url in &candidates {
        if let Some(found) = net::get_json(http, url).await? {
            prm = Some(found);
            break;
        }
    }
    let Some(prm) = prm else { return legacy(http, server_url, challenge).await };
    discovery::check_resource(&prm, server_url)?;
    // RFC 9728 §7.6: the client chooses; Latch takes the first that
    // answers with metadata that passes every check.
    if prm.authorization_servers.is_empty() {
        return Err(OAuthError::Discovery("the server's metadata names no authorization server".into()));
    }
    let mut first_error = None;
    let mut server = None;
    for issuer in prm.authorization_servers.iter().take(MAX_AUTHORIZATION_SERVERS) {
        match authorization_server(http, issuer, local).await {
            Ok(found) => {
                server = Some(found);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some(server) = server else {
        return Err(first_error.unwrap_or_else(|| OAuthError::Discovery("no authorization server".into())));
    };
    let scope = challenge
        .and_then(|c| c.scope.clone())
        .or_else(|| (!prm.scopes_supported.is_empty()).then(|| prm.scopes_supported.join(" ")));
    Ok(Some(Discovered { resource: prm.resource, server, scope }))
}

/// Authorization servers tried from one resource's metadata at most.
const MAX_AUTHORIZATION_SERVERS: usize = 4;

/// One authorization server's metadata, fetched from the well-known URLs
/// in MCP's order and checked.
async fn authorization_server(http: &Client, issuer: &str, local: bool) -> Result<ServerMetadata, OAuthError> {
    let issuer =
        Url::parse(issuer).map_err(|_| OAuthError::Discovery("the authorization server is not a URL".into()))?;
    check_secure(&issuer, "the authorization server", local)?;
    for url in discovery::server_metadata_urls(&issuer) {
        if let Some(found) = net::get_json::<ServerMetadata>(http, &url).await? {
            discovery::check_server(&found, &issuer, local)?;
            return Ok(found);
        }
    }
    Err(OAuthError::Discovery(format!("no authorization server metadata for {}", shown(&issuer))))
}

/// MCP 2025-03-26 servers have no protected-resource metadata: their
/// origin is the authorization server. Same origin as the server, so a
/// server can point Latch nowhere else this way; the resource is the
/// server's URL.
async fn legacy(
    http: &Client,
    server_url: &Url,
    challenge: Option<&Challenge>,
) -> Result<Option<Discovered>, OAuthError> {
    let mut issuer = server_url.clone();
    issuer.set_path("/");
    issuer.set_query(None);
    issuer.set_fragment(None);
    let mut found: Option<ServerMetadata> = None;
    for url in discovery::server_metadata_urls(&issuer) {
        if let Some(meta) = net::get_json(http, &url).await? {
            found = Some(meta);
            break;
        }
    }
    let Some(server) = found else { return Ok(None) };
    discovery::check_server(&server, &issuer, discovery::is_loopback(server_url))?;
    let mut resource = server_url.clone();
    resource.set_query(None);
    resource.set_fragment(None);
    Ok(Some(Discovered {
        resource: resource.as_str().to_owned(),
        server,
        scope: challenge.and_then(|c| c.scope.clone()),
    }))
}

/// A client registered with the authorization server.
#[derive(Debug, Clone)]
pub struct Registered {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_auth: Option<String>,
}

/// Dynamic client registration (RFC 7591) for this redirect URI.
///
/// MCP prefers client ID metadata documents when the server supports
/// them, but such a document must be served over https from a host the
/// client controls; Latch runs on the user's machine and has none, so it
/// registers.
pub async fn register(
    http: &Client,
    server: &ServerMetadata,
    redirect_uri: &str,
    client_name: &str,
) -> Result<Registered, OAuthError> {
    let endpoint = server.registration_endpoint.as_deref().ok_or_else(|| {
        OAuthError::Discovery(if server.client_id_metadata_document_supported {
            "the authorization server takes client ID metadata documents but offers no dynamic client \
             registration; Latch has no hosted https document to offer"
                .into()
        } else {
            "the authorization server offers no dynamic client registration: a person registers Latch \
             with it (a public client, redirect http://127.0.0.1/callback on any port) and gives Latch its \
             client ID"
                .into()
        })
    })?;
    let url = Url::parse(endpoint).map_err(|_| OAuthError::Discovery("bad registration endpoint".into()))?;
    let body = serde_json::json!({
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    let resp = http.post(url.clone()).json(&body).send().await.map_err(|e| net::http_err(&url, &e))?;
    let status = resp.status();
    let bytes = net::body(&url, resp).await?;
    if !status.is_success() {
        return Err(OAuthError::Refused(format!("client registration: {}", net::error_code(&bytes, status))));
    }
    #[derive(Deserialize)]
    struct Answer {
        client_id: String,
        #[serde(default)]
        client_secret: Option<Secret>,
        #[serde(default)]
        token_endpoint_auth_method: Option<String>,
    }
    let a: Answer = serde_json::from_slice(&bytes)
        .map_err(|_| OAuthError::Refused("client registration: not a registration answer".into()))?;
    let client_auth = a.client_secret.as_ref().map(|_| {
        match a.token_endpoint_auth_method.as_deref() {
            Some("client_secret_post") => "client_secret_post",
            _ => "client_secret_basic",
        }
        .to_owned()
    });
    Ok(Registered { client_id: a.client_id, client_secret: a.client_secret, client_auth })
}

/// The address the person opens. Pure.
pub fn authorize_url(
    d: &Discovered,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    state: &str,
) -> Result<Url, OAuthError> {
    let mut url = Url::parse(&d.server.authorization_endpoint)
        .map_err(|_| OAuthError::Discovery("bad authorization endpoint".into()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state)
            .append_pair("resource", &d.resource);
        if let Some(scope) = &d.scope {
            q.append_pair("scope", scope);
        }
    }
    Ok(url)
}

/// A token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub access_token: Secret,
    pub token_type: String,
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// `expires_in` as a number, as some servers send it as a string, or as a
/// float; anything else counts as not given.
fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

async fn token_request(
    http: &Client,
    endpoint: &str,
    mut form: Vec<(&'static str, String)>,
    client_id: &str,
    secret: Option<&Secret>,
    client_auth: Option<&str>,
) -> Result<Tokens, OAuthError> {
    let url = Url::parse(endpoint).map_err(|_| OAuthError::Discovery("bad token endpoint".into()))?;
    let mut req = http.post(url.clone()).header("Accept", "application/json");
    match (secret, client_auth) {
        (Some(s), Some("client_secret_basic")) => req = req.basic_auth(client_id, Some(s.expose())),
        (Some(s), _) => {
            form.push(("client_id", client_id.to_owned()));
            form.push(("client_secret", s.expose().to_owned()));
        }
        (None, _) => form.push(("client_id", client_id.to_owned())),
    }
    let resp = req.form(&form).send().await.map_err(|e| net::http_err(&url, &e))?;
    let status = resp.status();
    let bytes = net::body(&url, resp).await?;
    if !status.is_success() {
        return Err(OAuthError::Refused(format!("token request: {}", net::error_code(&bytes, status))));
    }
    let tokens: Tokens =
        serde_json::from_slice(&bytes).map_err(|_| OAuthError::Refused("token request: not a token answer".into()))?;
    if !tokens.token_type.eq_ignore_ascii_case("bearer") || tokens.access_token.expose().is_empty() {
        return Err(OAuthError::Refused("token request: not a bearer token".into()));
    }
    Ok(tokens)
}

/// The code for tokens.
pub async fn exchange(
    http: &Client,
    d: &Discovered,
    client: &Registered,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens, OAuthError> {
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("code_verifier", verifier.to_owned()),
        ("resource", d.resource.clone()),
    ];
    token_request(
        http,
        &d.server.token_endpoint,
        form,
        &client.client_id,
        client.client_secret.as_ref(),
        client.client_auth.as_deref(),
    )
    .await
}

/// A new access token from the refresh token; the record updated (a
/// refresh token not rotated by the server is kept).
pub async fn refresh(http: &Client, rec: &Record, now: u64) -> Result<Record, OAuthError> {
    let refresh_token = rec.refresh_token.as_ref().ok_or(OAuthError::NoRefreshToken)?;
    let form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.expose().to_owned()),
        ("resource", rec.resource.clone()),
    ];
    let t = token_request(
        http,
        &rec.token_endpoint,
        form,
        &rec.client_id,
        rec.client_secret.as_ref(),
        rec.client_auth.as_deref(),
    )
    .await?;
    Ok(Record {
        access_token: t.access_token,
        refresh_token: t.refresh_token.or_else(|| rec.refresh_token.clone()),
        expires_at: t.expires_in.map(|s| now.saturating_add(s)),
        obtained_at: now,
        scope: t.scope.or_else(|| rec.scope.clone()),
        ..rec.clone()
    })
}

/// Revokes the refresh and access tokens, best effort (RFC 7009).
pub async fn revoke(http: &Client, rec: &Record) -> bool {
    let Some(endpoint) = rec.revocation_endpoint.as_deref() else { return false };
    let Ok(url) = Url::parse(endpoint) else { return false };
    let mut all = true;
    let tokens = rec.refresh_token.iter().map(|t| (t, "refresh_token")).chain([(&rec.access_token, "access_token")]);
    for (token, hint) in tokens {
        let mut form = vec![("token", token.expose().to_owned()), ("token_type_hint", hint.to_owned())];
        let mut req = http.post(url.clone());
        match (&rec.client_secret, rec.client_auth.as_deref()) {
            (Some(s), Some("client_secret_basic")) => req = req.basic_auth(&rec.client_id, Some(s.expose())),
            (Some(s), _) => {
                form.push(("client_id", rec.client_id.clone()));
                form.push(("client_secret", s.expose().to_owned()));
            }
            (None, _) => form.push(("client_id", rec.client_id.clone())),
        }
        all &= req.form(&form).send().await.is_ok_and(|r| r.status().is_success());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_with_odd_expiry_shapes() {
        for (body, want) in [
            (r#"{"access_token":"a","token_type":"bearer","expires_in":3600}"#, Some(3600)),
            (r#"{"access_token":"a","token_type":"Bearer","expires_in":"60"}"#, Some(60)),
            (r#"{"access_token":"a","token_type":"Bearer","expires_in":1.5}"#, Some(1)),
            (r#"{"access_token":"a","token_type":"Bearer","expires_in":null}"#, None),
            (r#"{"access_token":"a","token_type":"Bearer"}"#, None),
        ] {
            let t: Tokens = serde_json::from_str(body).unwrap();
            assert_eq!(t.expires_in, want, "{body}");
            assert!(!format!("{t:?}").contains("\"a\""));
        }
    }

    #[test]
    fn authorization_url_carries_pkce_state_resource_and_scope() {
        let d = Discovered {
            resource: "https://mcp.example/mcp".into(),
            server: ServerMetadata {
                issuer: "https://auth.example".into(),
                authorization_endpoint: "https://auth.example/authorize?tenant=1".into(),
                token_endpoint: "https://auth.example/token".into(),
                registration_endpoint: None,
                revocation_endpoint: None,
                code_challenge_methods_supported: Some(vec!["S256".into()]),
                authorization_response_iss_parameter_supported: false,
                client_id_metadata_document_supported: false,
            },
            scope: Some("read write".into()),
        };
        let pkce = Pkce::new().unwrap();
        let url = authorize_url(&d, "cid", "http://127.0.0.1:5/callback", &pkce, "st").unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5/callback");
        assert_eq!(q["code_challenge"], pkce.challenge);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], "st");
        assert_eq!(q["resource"], "https://mcp.example/mcp");
        assert_eq!(q["scope"], "read write");
        assert!(!url.as_str().contains(&pkce.verifier));
    }
}
