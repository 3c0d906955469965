//! The user's session bus and the `org.freedesktop.Notifications` calls
//! Latch makes on it.
//!
//! zbus (the crate under notify-rust's default backend) is used directly:
//! notify-rust finds the bus only through this process's environment, opens
//! a connection per notification and waits for actions with one blocked
//! wait per notification. Here one connection, made to an address found
//! explicitly ([`session_address`]), carries every call, and one signal
//! stream brings every `ActionInvoked` and `NotificationClosed`. zbus runs
//! its own executor thread; every call is async and bounded by a timeout, so
//! nothing here blocks a runtime worker, and a dead bus costs one failed
//! call, never a stuck task.

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use zbus::Variant;
use zbus::export::futures_core::Stream;
use zbus::{Connection, MatchRule, MessageStream};

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const IFACE: &str = "org.freedesktop.Notifications";
/// Longest wait for one D-Bus call (or for connecting).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong, in words for `latch status`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BusError {
    #[error(
        "no D-Bus session bus found (DBUS_SESSION_BUS_ADDRESS is not set, and {0} does not exist): desktop \
         notifications are off — answer approvals in `latch tui`, or start the daemon from your desktop session"
    )]
    NoBus(String),
    #[error("cannot reach the session bus at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: zbus::Error,
    },
    #[error("the notification server did not answer: {0} (is a notification daemon running on the session bus?)")]
    Call(#[from] zbus::Error),
    #[error("the session bus did not answer within {}s", CALL_TIMEOUT.as_secs())]
    Timeout,
    #[error("the session bus closed the connection")]
    Closed,
}

/// The session bus address: `$DBUS_SESSION_BUS_ADDRESS` when set, else
/// `$XDG_RUNTIME_DIR/bus`, else `/run/user/<uid>/bus`, each of the last two
/// only if the socket is there. A daemon started by a shim inherits the
/// agent's bare environment, so the variables are often missing.
pub(crate) fn session_address(
    var: impl Fn(&str) -> Option<String>,
    uid: u32,
    exists: impl Fn(&Path) -> bool,
) -> Result<String, BusError> {
    if let Some(a) = var("DBUS_SESSION_BUS_ADDRESS").filter(|a| !a.trim().is_empty()) {
        return Ok(a);
    }
    let mut tried = Vec::new();
    let runtime = var("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    for dir in runtime.into_iter().chain([format!("/run/user/{uid}")]) {
        let socket = Path::new(&dir).join("bus");
        if exists(&socket) {
            return Ok(format!("unix:path={}", socket.display()));
        }
        tried.push(socket.display().to_string());
    }
    Err(BusError::NoBus(tried.join(" nor ")))
}

/// A signal from the notification server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A button (`key` "approve", "deny") or the body ("default") was used.
    Action { id: u32, key: String },
    /// The notification went away (dismissed, expired, closed by us).
    Closed { id: u32 },
    /// An `ActionInvoked` from a bus peer that is not the current owner of
    /// `org.freedesktop.Notifications`: any program on the session bus can
    /// emit one, so it answers nothing and is recorded.
    Forged { id: u32, sender: String },
}

/// One connection to the notification server.
pub(crate) struct Bus {
    conn: Connection,
    signals: MessageStream,
    /// The server shows action buttons (capability "actions").
    pub actions: bool,
    /// The server reads bodies as markup (capability "body-markup").
    pub markup: bool,
}

async fn bounded<T>(f: impl Future<Output = zbus::Result<T>>) -> Result<T, BusError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(BusError::Timeout),
    }
}

impl Bus {
    /// Connects to `address`, subscribes to the server's signals and reads
    /// its capabilities.
    pub async fn connect(address: &str) -> Result<Bus, BusError> {
        let builder = zbus::connection::Builder::address(address).method_timeout(CALL_TIMEOUT);
        let conn = match tokio::time::timeout(CALL_TIMEOUT, builder.build()).await {
            Ok(Ok(c)) => c,
            Ok(Err(source)) => return Err(BusError::Connect { address: address.to_owned(), source }),
            Err(_) => return Err(BusError::Timeout),
        };
        let rule = MatchRule::builder().msg_type(zbus::message::Type::Signal).interface(IFACE).path(PATH).build()?;
        let signals = bounded(MessageStream::for_match_rule(rule, &conn, None)).await?;
        let caps: Vec<String> = bounded(conn.call_method(Some(DEST), PATH, Some(IFACE), "GetCapabilities", &()))
            .await?
            .body()
            .deserialize()?;
        Ok(Bus {
            conn,
            signals,
            actions: caps.iter().any(|c| c == "actions"),
            markup: caps.iter().any(|c| c == "body-markup"),
        })
    }

    /// Shows a notification, replacing `replaces` (0: a new one); returns
    /// its id.
    pub async fn notify(&self, replaces: u32, summary: &str, body: &str, buttons: bool) -> Result<u32, BusError> {
        let actions: Vec<&str> = if buttons { vec!["approve", "Approve", "deny", "Deny"] } else { Vec::new() };
        let mut hints: HashMap<&str, Variant<'_>> = HashMap::new();
        hints.insert("urgency", Variant::U8(1));
        hints.insert("category", Variant::from("x-latch.approval"));
        // Never expires: it stays until answered here or elsewhere.
        let expire_timeout: i32 = 0;
        let reply = bounded(self.conn.call_method(
            Some(DEST),
            PATH,
            Some(IFACE),
            "Notify",
            &("Latch", replaces, "dialog-warning", summary, body, actions, hints, expire_timeout),
        ))
        .await?;
        Ok(reply.body().deserialize::<u32>()?)
    }

    /// Closes notification `id`.
    pub async fn close(&self, id: u32) -> Result<(), BusError> {
        bounded(self.conn.call_method(Some(DEST), PATH, Some(IFACE), "CloseNotification", &(id,))).await?;
        Ok(())
    }

    /// The unique bus name that owns `org.freedesktop.Notifications` now.
    async fn owner(&self) -> Option<String> {
        let reply = bounded(self.conn.call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetNameOwner",
            &(DEST,),
        ))
        .await
        .ok()?;
        reply.body().deserialize::<String>().ok()
    }

    /// The next signal; `None` when the connection is gone.
    pub async fn next_signal(&mut self) -> Option<Signal> {
        loop {
            let msg = std::future::poll_fn(|cx| Pin::new(&mut self.signals).poll_next(cx)).await?;
            let Ok(msg) = msg else { continue };
            let header = msg.header();
            let member = header.member().map(|m| m.as_str().to_owned());
            match member.as_deref() {
                Some("ActionInvoked") => {
                    let sender = header.sender().map(|s| s.as_str().to_owned()).unwrap_or_default();
                    if let Ok((id, key)) = msg.body().deserialize::<(u32, String)>() {
                        // Who owns the name now (it may have changed hands).
                        return Some(match self.owner().await {
                            Some(owner) if owner == sender => Signal::Action { id, key },
                            _ => Signal::Forged { id, sender },
                        });
                    }
                }
                Some("NotificationClosed") => {
                    if let Ok((id, _reason)) = msg.body().deserialize::<(u32, u32)>() {
                        return Some(Signal::Closed { id });
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_environment_variable_wins() {
        let a = session_address(env(&[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/b")]), 1000, |_| true);
        assert_eq!(a.unwrap(), "unix:path=/tmp/b");
    }

    #[test]
    fn a_bare_environment_finds_the_runtime_dir_bus() {
        let a = session_address(env(&[("XDG_RUNTIME_DIR", "/x")]), 1000, |p| p == Path::new("/x/bus"));
        assert_eq!(a.unwrap(), "unix:path=/x/bus");
        let a = session_address(env(&[]), 1000, |p| p == Path::new("/run/user/1000/bus"));
        assert_eq!(a.unwrap(), "unix:path=/run/user/1000/bus");
        let a = session_address(env(&[("XDG_RUNTIME_DIR", "/x")]), 7, |p| p == Path::new("/run/user/7/bus"));
        assert_eq!(a.unwrap(), "unix:path=/run/user/7/bus");
    }

    #[test]
    fn no_bus_anywhere_says_where_it_looked() {
        let e = session_address(env(&[("XDG_RUNTIME_DIR", "/x"), ("DBUS_SESSION_BUS_ADDRESS", "")]), 5, |_| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/bus") && e.contains("/run/user/5/bus") && e.contains("latch tui"), "{e}");
    }
}
