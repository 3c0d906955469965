//! Finding the bot token: the environment variable `token_env` names, else
//! the file `token_file` names, which must be the user's own and readable
//! by nobody else.
//!
//! The file's owner and mode are read from the open file (`fstat`), not
//! from its path, so what is checked is what is read. A file that group or
//! others may read is refused, not fixed: a token that has sat readable may
//! have been read, and the person should know (and perhaps revoke it).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use latch_core::policy::TelegramConf;

/// Longest token file read: tokens are ~46 characters.
const MAX_FILE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error(
        "no bot token: {0} — put the token from @BotFather in the daemon's environment or in a file of mode 0600 \
         named by `token_file` in [telegram]"
    )]
    Missing(String),
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the token file {path} can be read by others (mode {mode:04o}); the bot token must be private — run `chmod \
         600 {path}` (and consider revoking the token with @BotFather if others could read it)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the token file {path} belongs to user id {owner}, not to you ({me}) — use a file of your own")]
    NotOurs { path: PathBuf, owner: u32, me: u32 },
    #[error("the token file {0} is empty — write the token from @BotFather in it")]
    Empty(PathBuf),
    #[error("{0} does not hold a bot token (one line, like 123456:ABC-def…, no spaces or slashes)")]
    Malformed(String),
    #[error("token_file {0} starts with ~/ but HOME is not set — write the full path")]
    NoHome(String),
}

/// The token, from the environment (`env` reads a variable) or the file.
pub(crate) fn resolve(conf: &TelegramConf, env: impl Fn(&str) -> Option<String>) -> Result<String, TokenError> {
    if let Some(var) = &conf.token_env
        && let Some(v) = env(var)
    {
        let v = v.trim();
        if !v.is_empty() {
            check_shape(v, &format!("the environment variable {var}"))?;
            return Ok(v.to_owned());
        }
    }
    let Some(file) = &conf.token_file else {
        let var = conf.token_env.as_deref().unwrap_or(TelegramConf::DEFAULT_TOKEN_ENV);
        return Err(TokenError::Missing(format!("{var} is not set")));
    };
    let path = match file.strip_prefix("~/") {
        Some(rest) => Path::new(&env("HOME").ok_or_else(|| TokenError::NoHome(file.clone()))?).join(rest),
        None => PathBuf::from(file),
    };
    read_private(&path)
}

fn check_shape(token: &str, from: &str) -> Result<(), TokenError> {
    // The token becomes a path segment of every request URL.
    if token.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%')) {
        return Err(TokenError::Malformed(from.to_owned()));
    }
    Ok(())
}

/// Reads a token file that must be ours and private.
fn read_private(path: &Path) -> Result<String, TokenError> {
    let read_err = |source| TokenError::Read { path: path.to_owned(), source };
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    let me = crate::audit::current_uid();
    if meta.uid() != me {
        return Err(TokenError::NotOurs { path: path.to_owned(), owner: meta.uid(), me });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(TokenError::TooOpen { path: path.to_owned(), mode: meta.mode() & 0o7777 });
    }
    let mut text = String::new();
    f.by_ref().take(MAX_FILE).read_to_string(&mut text).map_err(read_err)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty(path.to_owned()));
    }
    check_shape(token, &format!("the token file {}", path.display()))?;
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn conf(env: Option<&str>, file: Option<&Path>) -> TelegramConf {
        TelegramConf {
            token_env: env.map(str::to_owned),
            token_file: file.map(|p| p.display().to_string()),
            ..TelegramConf::default()
        }
    }

    /// A token file in a folder of its own, removed with the value.
    struct TempToken(PathBuf);

    impl std::ops::Deref for TempToken {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempToken {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn temp_file(name: &str, text: &str, mode: u32) -> TempToken {
        let dir = std::env::temp_dir().join(format!("latch-token-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("token");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        TempToken(p)
    }

    #[test]
    fn the_variable_wins_when_set_and_the_file_is_read_otherwise() {
        let p = temp_file("both", "123:from-file\n", 0o600);
        let c = conf(Some("TG"), Some(&p));
        assert_eq!(resolve(&c, |k| (k == "TG").then(|| "123:from-env".into())).unwrap(), "123:from-env");
        assert_eq!(resolve(&c, |_| None).unwrap(), "123:from-file");
        assert_eq!(resolve(&c, |k| (k == "TG").then(|| "  ".into())).unwrap(), "123:from-file");
    }

    #[test]
    fn a_token_file_others_can_read_is_refused_and_says_why() {
        let p = temp_file("open", "123:secret\n", 0o644);
        let e = resolve(&conf(None, Some(&p)), |_| None).unwrap_err();
        assert!(matches!(e, TokenError::TooOpen { mode: 0o644, .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("chmod 600") && msg.contains("0644"), "{msg}");
        assert!(!msg.contains("123:secret"));
        let p = temp_file("group", "123:secret\n", 0o640);
        assert!(matches!(resolve(&conf(None, Some(&p)), |_| None), Err(TokenError::TooOpen { .. })));
    }

    #[test]
    fn no_token_anywhere_names_the_variable_to_set() {
        let e = resolve(&conf(Some("LATCH_TELEGRAM_TOKEN"), None), |_| None).unwrap_err();
        assert!(e.to_string().contains("LATCH_TELEGRAM_TOKEN is not set"), "{e}");
        let missing = Path::new("/nonexistent/latch/token");
        assert!(matches!(resolve(&conf(None, Some(missing)), |_| None), Err(TokenError::Read { .. })));
    }

    #[test]
    fn empty_or_malformed_tokens_are_refused() {
        let p = temp_file("empty", "\n", 0o600);
        assert!(matches!(resolve(&conf(None, Some(&p)), |_| None), Err(TokenError::Empty(_))));
        let p = temp_file("slash", "123:abc/../x\n", 0o600);
        assert!(matches!(resolve(&conf(None, Some(&p)), |_| None), Err(TokenError::Malformed(_))));
        assert!(matches!(resolve(&conf(Some("TG"), None), |_| Some("123 456".into())), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn a_home_relative_file_uses_home() {
        let p = temp_file("home", "123:home\n", 0o600);
        let home = p.parent().unwrap().to_owned();
        let c = TelegramConf { token_env: None, token_file: Some("~/token".into()), ..TelegramConf::default() };
        let got = resolve(&c, |k| (k == "HOME").then(|| home.display().to_string())).unwrap();
        assert_eq!(got, "123:home");
    }
}
