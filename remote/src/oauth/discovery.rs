//! Where the metadata documents are, and whether what they say can be
//! trusted: protected-resource metadata (RFC 9728) and authorization-server
//! metadata (RFC 8414, OpenID Connect Discovery), in the order the MCP
//! authorization specification gives. Pure: fetching is `flow`'s.

use reqwest::Url;
use serde::Deserialize;

use super::OAuthError;

/// RFC 9728 §2, the fields Latch uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// RFC 8414 §2 (and the OpenID provider metadata it shares), the fields
/// Latch uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
}

/// Where the protected-resource metadata of `server` may be, in order:
/// the well-known path with the server's path inserted, then at the root
/// (RFC 9728 §3.1). The `resource_metadata` of a challenge comes first.
pub fn resource_metadata_urls(server: &Url) -> Vec<Url> {
    well_known(server, "oauth-protected-resource", true)
}

/// Where the authorization-server metadata of `issuer` may be (MCP
/// authorization, "Authorization Server Metadata Discovery"): with a path,
/// OAuth with the path inserted, OpenID with the path inserted, OpenID with
/// the path appended; without, OAuth then OpenID at the root.
pub fn server_metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut urls = Vec::new();
    let mut at = |p: String| {
        let mut u = issuer.clone();
        u.set_path(&p);
        u.set_query(None);
        u.set_fragment(None);
        urls.push(u);
    };
    if path.is_empty() {
        at("/.well-known/oauth-authorization-server".into());
        at("/.well-known/openid-configuration".into());
    } else {
        at(format!("/.well-known/oauth-authorization-server{path}"));
        at(format!("/.well-known/openid-configuration{path}"));
        at(format!("{path}/.well-known/openid-configuration"));
    }
    urls
}

fn well_known(server: &Url, name: &str, with_root: bool) -> Vec<Url> {
    let path = server.path().trim_end_matches('/');
    let mut urls = Vec::new();
    let mut at = |p: String| {
        let mut u = server.clone();
        u.set_path(&p);
        u.set_query(None);
        u.set_fragment(None);
        urls.push(u);
    };
    if !path.is_empty() {
        at(format!("/.well-known/{name}{path}"));
    }
    if with_root || path.is_empty() {
        at(format!("/.well-known/{name}"));
    }
    urls
}

/// Is `host` this machine?
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Every OAuth URL Latch visits or sends secrets to must be https; plain
/// http only on this machine, and only when the MCP server itself is on
/// this machine (a remote server cannot point Latch at local services).
pub fn check_secure(url: &Url, what: &str, server_is_local: bool) -> Result<(), OAuthError> {
    let ok = match url.scheme() {
        "https" => true,
        "http" => server_is_local && is_loopback(url),
        _ => false,
    };
    if ok && url.username().is_empty() && url.password().is_none() && url.fragment().is_none() {
        Ok(())
    } else {
        Err(OAuthError::Insecure(format!("{what} {} is not an https address", shown(url))))
    }
}

/// A URL as it may appear in a message: its origin only. Most URLs here
/// come from the server's metadata, and a message may reach the agent: no
/// path, query or credentials, nothing the server wrote but a host name.
pub fn shown(url: &Url) -> String {
    let origin = url.origin();
    if origin.is_tuple() { origin.ascii_serialization() } else { format!("a {}: address", url.scheme()) }
}

/// RFC 9728 §3.3 and RFC 8707: the metadata's `resource` must name the
/// server Latch is talking to: the same origin, and a path that is the
/// server's path or a parent of it at a `/`. Returns the canonical
/// resource (the `resource` parameter of every request).
pub fn check_resource(meta: &ResourceMetadata, server: &Url) -> Result<Url, OAuthError> {
    let mismatch =
        || OAuthError::Discovery(format!("the server's metadata names another resource than {}", shown(server)));
    let resource = Url::parse(&meta.resource).map_err(|_| mismatch())?;
    if resource.origin() != server.origin() || resource.query().is_some() || resource.fragment().is_some() {
        return Err(mismatch());
    }
    let rp = resource.path().trim_end_matches('/');
    let sp = server.path().trim_end_matches('/');
    let inside = sp == rp || (sp.starts_with(rp) && sp.as_bytes().get(rp.len()) == Some(&b'/'));
    if inside { Ok(resource) } else { Err(mismatch()) }
}

/// RFC 8414 §3.3: the document's `issuer` is the issuer it was asked for;
/// and MCP: S256 must be offered, or Latch refuses to go on.
pub fn check_server(meta: &ServerMetadata, issuer: &Url, server_is_local: bool) -> Result<(), OAuthError> {
    let same = Url::parse(&meta.issuer)
        .is_ok_and(|u| u.as_str().trim_end_matches('/') == issuer.as_str().trim_end_matches('/'));
    if !same {
        return Err(OAuthError::Discovery(format!(
            "the authorization server's metadata names another issuer than {}",
            shown(issuer)
        )));
    }
    let s256 = meta.code_challenge_methods_supported.as_ref().is_some_and(|m| m.iter().any(|m| m == "S256"));
    if !s256 {
        return Err(OAuthError::NoPkce(shown(issuer)));
    }
    for (what, url) in [
        ("authorization endpoint", Some(&meta.authorization_endpoint)),
        ("token endpoint", Some(&meta.token_endpoint)),
        ("registration endpoint", meta.registration_endpoint.as_ref()),
        ("revocation endpoint", meta.revocation_endpoint.as_ref()),
    ] {
        if let Some(url) = url {
            let url = Url::parse(url).map_err(|_| OAuthError::Discovery(format!("the {what} is not a URL")))?;
            check_secure(&url, what, server_is_local)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn strs(v: Vec<Url>) -> Vec<String> {
        v.into_iter().map(String::from).collect()
    }

    #[test]
    fn resource_metadata_path_insertion_then_root() {
        assert_eq!(
            strs(resource_metadata_urls(&u("https://h.example/public/mcp?x=1"))),
            [
                "https://h.example/.well-known/oauth-protected-resource/public/mcp",
                "https://h.example/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            strs(resource_metadata_urls(&u("https://h.example:8443/"))),
            ["https://h.example:8443/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn server_metadata_in_the_specs_order() {
        assert_eq!(
            strs(server_metadata_urls(&u("https://auth.example/tenant1"))),
            [
                "https://auth.example/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example/.well-known/openid-configuration/tenant1",
                "https://auth.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            strs(server_metadata_urls(&u("https://auth.example"))),
            [
                "https://auth.example/.well-known/oauth-authorization-server",
                "https://auth.example/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn http_only_on_loopback_and_only_for_a_local_server() {
        assert!(check_secure(&u("https://a.example/t"), "x", false).is_ok());
        assert!(check_secure(&u("http://127.0.0.1:9/t"), "x", true).is_ok());
        assert!(check_secure(&u("http://localhost/t"), "x", true).is_ok());
        assert!(check_secure(&u("http://[::1]:9/t"), "x", true).is_ok());
        assert!(check_secure(&u("http://127.0.0.1:9/t"), "x", false).is_err());
        assert!(check_secure(&u("http://a.example/t"), "x", true).is_err());
        assert!(check_secure(&u("file:///etc/passwd"), "x", true).is_err());
        assert!(check_secure(&u("https://user:pw@a.example/t"), "x", false).is_err());
    }

    fn prm(resource: &str) -> ResourceMetadata {
        ResourceMetadata { resource: resource.into(), authorization_servers: vec![], scopes_supported: vec![] }
    }

    #[test]
    fn messages_show_origins_only() {
        assert_eq!(
            shown(&u("https://user:pw@auth.example:8443/ignore/previous?token=x#f")),
            "https://auth.example:8443"
        );
        assert_eq!(shown(&u("file:///etc/passwd")), "a file: address");
    }

    #[test]
    fn resource_must_name_this_server() {
        let server = u("https://mcp.example/api/mcp");
        for ok in [
            "https://mcp.example/api/mcp",
            "https://mcp.example/api/mcp/",
            "https://mcp.example/api",
            "https://mcp.example/",
            "https://mcp.example",
        ] {
            assert!(check_resource(&prm(ok), &server).is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.example/api/mcp",
            "http://mcp.example/api/mcp",
            "https://mcp.example:444/api/mcp",
            "https://mcp.example/ap",
            "https://mcp.example/api/mcp/other",
            "https://mcp.example/other",
            "not a url",
        ] {
            assert!(check_resource(&prm(bad), &server).is_err(), "{bad}");
        }
    }

    fn asm(issuer: &str, methods: Option<&[&str]>) -> ServerMetadata {
        ServerMetadata {
            issuer: issuer.into(),
            authorization_endpoint: "https://auth.example/authorize".into(),
            token_endpoint: "https://auth.example/token".into(),
            registration_endpoint: None,
            revocation_endpoint: None,
            code_challenge_methods_supported: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
            authorization_response_iss_parameter_supported: false,
            client_id_metadata_document_supported: false,
        }
    }

    #[test]
    fn server_metadata_checks() {
        let issuer = u("https://auth.example/t");
        assert!(check_server(&asm("https://auth.example/t", Some(&["plain", "S256"])), &issuer, false).is_ok());
        assert!(matches!(
            check_server(&asm("https://auth.example/t", None), &issuer, false),
            Err(OAuthError::NoPkce(_))
        ));
        assert!(matches!(
            check_server(&asm("https://auth.example/t", Some(&["plain"])), &issuer, false),
            Err(OAuthError::NoPkce(_))
        ));
        assert!(check_server(&asm("https://evil.example/t", Some(&["S256"])), &issuer, false).is_err());
        let mut m = asm("https://auth.example/t", Some(&["S256"]));
        m.token_endpoint = "http://auth.example/token".into();
        assert!(matches!(check_server(&m, &issuer, false), Err(OAuthError::Insecure(_))));
    }
}
