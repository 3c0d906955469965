//! `latch stop` and `latch resume`: the kill switch. Stopping needs no PIN
//! (it only tightens); resuming does, when one is set.

use latch_proto::client::{self, ClientError, Hello};
use latch_proto::{ClientMsg, Pin, Role};

use super::pin::{PinSource, done, exchange, pin_set};

/// `latch stop`: starts a daemon when none runs, so the stop is kept.
pub fn stop() -> anyhow::Result<i32> {
    let paths = super::paths()?;
    {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        if let Err(ClientError::NoDaemon(_)) = rt.block_on(client::connect(&paths, &Hello::new(Role::Cli, "stop"))) {
            latch_shim::start_daemon(&paths)?;
        }
    }
    done(exchange(ClientMsg::Stop { req: 1 }, |_| Ok(None))?)
}

/// `latch resume`: asks for the PIN when one is set.
pub fn resume(pin_stdin: bool) -> anyhow::Result<i32> {
    let mut source = PinSource::new(pin_stdin);
    let reply = exchange(ClientMsg::Status { req: 1 }, |status| {
        let pin = if pin_set(status)? { Some(Pin(source.read("PIN to resume tool calls: ")?)) } else { None };
        Ok(Some(ClientMsg::Resume { req: 2, pin }))
    })?;
    done(reply)
}
