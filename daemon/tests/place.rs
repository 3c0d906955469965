//! Where a call's relative paths are resolved: the place (working directory
//! and environment) of the process observed on the connection, read once
//! when it connects, never the pid a peer claims in its hello.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon;
use latch_proto::{ClientMsg, DaemonMsg, Decision, PROTOCOL_VERSION, Role, frame};

const ALLOW_ALL: &str = "[[rule]]\nserver = \"*\"\ntool = \"*\"\neffect = \"allow\"\n";

/// Set in the child this test starts as the peer: the socket to talk to
/// and the pid to claim.
const PEER_SOCKET: &str = "LATCH_TEST_PLACE_SOCKET";
const PEER_CLAIM: &str = "LATCH_TEST_PLACE_CLAIM";

/// The peer's side, run in a child process of this test binary (started
/// in the daemon's home, so `policy.toml` there is the policy): hello
/// claiming another process's pid, then one `write_file` decision, printed.
#[test]
fn peer_child() {
    let (Ok(socket), Ok(claim)) = (std::env::var(PEER_SOCKET), std::env::var(PEER_CLAIM)) else { return };
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let hello = ClientMsg::Hello {
        protocol: PROTOCOL_VERSION,
        role: Role::Shim,
        name: "fs".into(),
        pid: claim.parse().unwrap(),
        session: "s".into(),
        command: Vec::new(),
    };
    s.write_all(&frame::encode(&hello)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(matches!(frame::decode::<DaemonMsg>(line.as_bytes()), Ok(DaemonMsg::Welcome { .. })), "{line}");
    let args = serde_json::json!({"path": "policy.toml"});
    s.write_all(&frame::encode(&ClientMsg::Decide { req: 1, tool: "write_file".into(), args, retry: false })).unwrap();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "the daemon hung up");
        if let Ok(msg @ DaemonMsg::Decision { req: 1, .. }) = frame::decode::<DaemonMsg>(line.as_bytes()) {
            println!("DECISION {}", serde_json::to_string(&msg).unwrap());
            return;
        }
    }
}

#[test]
fn relative_paths_resolve_in_the_observed_peers_place_not_a_claimed_one() {
    let d = daemon::start("place-claim", Some(ALLOW_ALL), daemon::quiet());
    // A process elsewhere, whose pid the peer claims: in its place,
    // `policy.toml` is harmless.
    let mut decoy = Command::new("sleep").arg("60").current_dir("/").stdin(Stdio::null()).spawn().unwrap();
    let peer = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "peer_child", "--nocapture", "--test-threads=1"])
        .env(PEER_SOCKET, &d.paths.socket)
        .env(PEER_CLAIM, decoy.id().to_string())
        .current_dir(&d.paths.data_dir)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let _ = decoy.kill();
    let _ = decoy.wait();
    let out = String::from_utf8_lossy(&peer.stdout);
    let decision =
        out.lines().find_map(|l| l.split_once("DECISION ").map(|(_, d)| d)).unwrap_or_else(|| panic!("{out}"));
    let msg: DaemonMsg = serde_json::from_str(decision).unwrap();
    let DaemonMsg::Decision { decision, reason, .. } = msg else { unreachable!() };
    assert_eq!(decision, Decision::Deny, "Latch's files written through a relative path: {reason}");
    // (Its key, read as a relative path there, names Latch's folder too.)
    assert!(reason.contains("Latch's own file"), "{reason}");
}
