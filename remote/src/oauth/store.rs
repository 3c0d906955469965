//! Tokens and the registered client, one file per server under
//! `<home>/oauth/`: the folder 0700, each file 0600, written whole to a
//! temporary file and renamed over the old one, so a reader never sees half
//! a file and no other user can read a token.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OAuthError;
use super::pkce;

/// A token or client secret. Its `Debug` never shows it; it is only read
/// where it is sent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What Latch keeps for one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The server's name as configured.
    pub name: String,
    /// The MCP endpoint these tokens are for; they are sent nowhere else.
    pub server_url: String,
    /// The canonical resource (RFC 8707) the tokens were asked for.
    pub resource: String,
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// `client_secret_basic` or `client_secret_post` when there is a secret.
    #[serde(default)]
    pub client_auth: Option<String>,
    /// The client ID was given by the person (registered with the server
    /// beforehand), not obtained by dynamic registration: a new browser
    /// step reuses it.
    #[serde(default)]
    pub preregistered: bool,
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Unix seconds; `None` when the server did not say.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Unix seconds when the access token was issued.
    pub obtained_at: u64,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Refresh this long before expiry at most...
const REFRESH_MARGIN_MAX: u64 = 60;

impl Record {
    /// Should the access token be refreshed before it is used at `now`?
    /// Within a quarter of its lifetime (at most a minute) of expiring.
    pub fn needs_refresh(&self, now: u64) -> bool {
        let Some(expires_at) = self.expires_at else { return false };
        let lifetime = expires_at.saturating_sub(self.obtained_at);
        let margin = (lifetime / 4).min(REFRESH_MARGIN_MAX);
        now + margin >= expires_at
    }

    /// Has it expired at `now`?
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `<home>/oauth`.
pub fn folder(home: &Path) -> PathBuf {
    home.join("oauth")
}

/// The file of server `name`. Plain names are kept readable; anything else
/// (slashes, dots first, odd characters) becomes a hash, so a name never
/// reaches outside the folder.
pub fn file(home: &Path, name: &str) -> PathBuf {
    let plain = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c));
    let stem = if plain {
        name.to_owned()
    } else {
        use sha2::{Digest, Sha256};
        format!("h-{}", pkce::base64url(&Sha256::digest(name.as_bytes())[..18]))
    };
    folder(home).join(format!("{stem}.json"))
}

fn store_err(what: &str, path: &Path, e: impl std::fmt::Display) -> OAuthError {
    OAuthError::Store(format!("{what} {}: {e}", path.display()))
}

/// The record of `name`, if there is one.
pub fn load(home: &Path, name: &str) -> Result<Option<Record>, OAuthError> {
    let path = file(home, name);
    match fs::read(&path) {
        Ok(bytes) => {
            let record: Record =
                serde_json::from_slice(&bytes).map_err(|e| store_err("cannot read", &path, e.classify_text()))?;
            // Two names never share a file, but a hashed name could collide
            // in theory: the record says whose it is.
            Ok((record.name == name).then_some(record))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store_err("cannot read", &path, e)),
    }
}

/// serde_json's message for a bad file could quote the file; say only what
/// kind of problem it is.
trait ClassifyText {
    fn classify_text(&self) -> &'static str;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "not a token record",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

/// The folder, created 0700 (and set back to 0700 if it was opened up).
fn private_folder(home: &Path) -> Result<PathBuf, OAuthError> {
    let dir = folder(home);
    fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| store_err("cannot create", &dir, e))?;
    let meta = fs::symlink_metadata(&dir).map_err(|e| store_err("cannot open", &dir, e))?;
    if !meta.is_dir() {
        return Err(store_err("refusing", &dir, "it is not a folder"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| store_err("cannot protect", &dir, e))?;
    }
    Ok(dir)
}

/// Writes the record: a new 0600 file beside the old one, synced, renamed.
pub fn save(home: &Path, record: &Record) -> Result<(), OAuthError> {
    let dir = private_folder(home)?;
    let path = file(home, &record.name);
    let tmp = dir.join(format!(".tmp-{}", pkce::base64url(&pkce::random_bytes::<9>()?)));
    let body = serde_json::to_vec_pretty(record).map_err(|e| OAuthError::Internal(e.classify_text().into()))?;
    let written = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(store_err("cannot write", &path, e));
    }
    Ok(())
}

/// An exclusive hold on one server's record across processes (two shims
/// for the same server must not both spend a rotating refresh token);
/// released when dropped.
pub struct Lock {
    _file: fs::File,
}

/// Waits for the hold on `name`'s record. Blocking: call it off the
/// runtime's threads.
pub fn lock(home: &Path, name: &str) -> Result<Lock, OAuthError> {
    use std::os::fd::AsRawFd;
    private_folder(home)?;
    let path = file(home, name).with_extension("lock");
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| store_err("cannot open", &path, e))?;
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(Lock { _file: f });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(store_err("cannot lock", &path, e));
        }
    }
}

/// Deletes the record of `name`; `Ok(false)` when there was none.
pub fn delete(home: &Path, name: &str) -> Result<bool, OAuthError> {
    let path = file(home, name);
    let _ = fs::remove_file(path.with_extension("lock"));
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(store_err("cannot delete", &path, e)),
    }
}

/// Every record, sorted by name (unreadable files are skipped).
pub fn list(home: &Path) -> Result<Vec<Record>, OAuthError> {
    let dir = folder(home);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(store_err("cannot list", &dir, e)),
    };
    let mut out: Vec<Record> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json") && !n.starts_with('.')))
        .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> Record {
        Record {
            name: name.into(),
            server_url: "https://mcp.example/mcp".into(),
            resource: "https://mcp.example/mcp".into(),
            issuer: "https://auth.example".into(),
            token_endpoint: "https://auth.example/token".into(),
            revocation_endpoint: None,
            client_id: "c1".into(),
            client_secret: None,
            client_auth: None,
            preregistered: false,
            access_token: Secret::new("at-SECRET-1".into()),
            refresh_token: Some(Secret::new("rt-SECRET-2".into())),
            expires_at: Some(1_000 + 3_600),
            obtained_at: 1_000,
            scope: Some("read".into()),
        }
    }

    #[test]
    fn refresh_before_expiry() {
        let r = record("a");
        assert!(!r.needs_refresh(1_000));
        assert!(!r.needs_refresh(4_600 - 61));
        assert!(r.needs_refresh(4_600 - 60));
        assert!(!r.expired(4_599));
        assert!(r.expired(4_600));
        // Short-lived tokens: a quarter of their life.
        let short = Record { expires_at: Some(1_008), ..record("b") };
        assert!(!short.needs_refresh(1_005));
        assert!(short.needs_refresh(1_006));
        let never = Record { expires_at: None, ..record("c") };
        assert!(!never.needs_refresh(u64::MAX / 2));
        assert!(!never.expired(u64::MAX / 2));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!("{:?}", record("a"));
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn names_stay_inside_the_folder() {
        let home = Path::new("/h");
        assert_eq!(file(home, "github"), Path::new("/h/oauth/github.json"));
        for evil in ["../x", "a/b", ".hidden", "", "..", "x\0y"] {
            let f = file(home, evil);
            assert_eq!(f.parent(), Some(Path::new("/h/oauth")), "{evil}");
            assert!(f.file_name().unwrap().to_str().unwrap().starts_with("h-"), "{evil}");
        }
        assert_ne!(file(home, "../x"), file(home, "a/b"));
    }

    #[test]
    fn saved_private_and_atomically() {
        let home = std::env::temp_dir()
            .join(format!("latch-oauth-store-{}", pkce::base64url(&pkce::random_bytes::<6>().unwrap())));
        fs::create_dir_all(&home).unwrap();
        let r = record("srv");
        save(&home, &r).unwrap();
        save(&home, &Record { scope: Some("write".into()), ..r.clone() }).unwrap();
        let path = file(&home, "srv");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(folder(&home)).unwrap().permissions().mode() & 0o777, 0o700);
        let back = load(&home, "srv").unwrap().unwrap();
        assert_eq!(back.scope.as_deref(), Some("write"));
        assert_eq!(back.access_token, r.access_token);
        // No temporary files left behind; the list sees one record.
        assert_eq!(fs::read_dir(folder(&home)).unwrap().count(), 1);
        assert_eq!(list(&home).unwrap().len(), 1);
        // A folder opened up by someone is closed again on the next write.
        fs::set_permissions(folder(&home), fs::Permissions::from_mode(0o755)).unwrap();
        save(&home, &r).unwrap();
        assert_eq!(fs::metadata(folder(&home)).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(delete(&home, "srv").unwrap());
        assert!(!delete(&home, "srv").unwrap());
        assert!(load(&home, "srv").unwrap().is_none());
        fs::remove_dir_all(&home).unwrap();
    }
}
