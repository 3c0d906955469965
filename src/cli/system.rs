//! System mode (issue 20): `sudo latch setup --system` runs Latch's daemon
//! as a dedicated system user, so code the agent runs as the person can
//! neither kill it, nor read or change its log and PIN, nor stand up a
//! daemon that shims would accept. `--undo` removes what it made.
//!
//! What it makes (each path under the debug-only `LATCH_SYSTEM_PREFIX` in
//! test builds, see `latch_proto::system`):
//! - a system group and user (`latch` by default; no login shell, no home
//!   contents), the invoking person (`SUDO_USER`) added to the group;
//! - `/run/latch` (root's, 0755) holding `/run/latch/daemon` (the system
//!   user's, 0750: the group may enter, only the daemon may write) where
//!   the socket is (0660: the group may connect);
//! - `/var/lib/latch` (the system user's, 0700): database, journal, PIN,
//!   the daemon's own policy file;
//! - root's `/etc/latch/system.toml` naming the socket and the daemon's
//!   user id, which every client then requires;
//! - a systemd unit, started when systemd is PID 1.

use std::ffi::CString;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, anyhow, bail};
use latch_proto::paths::Paths;
use latch_proto::system::{self, SystemConfig};

const UNIT: &str = "/etc/systemd/system/latch.service";
const ETC: &str = "/etc/latch";

/// `latch setup` options.
#[derive(clap::Args, Debug)]
pub struct SetupArgs {
    /// Run the daemon as a dedicated system user (needs root).
    #[arg(long, required = true)]
    pub system: bool,
    /// Remove what `--system` made.
    #[arg(long)]
    pub undo: bool,
    /// With --undo: delete the state folder even when it holds an audit log.
    #[arg(long, requires = "undo")]
    pub purge: bool,
    /// The system user's name.
    #[arg(long, default_value = "latch")]
    pub user: String,
    /// The group whose members may connect (default: the user's name).
    #[arg(long)]
    pub group: Option<String>,
}

/// `latch daemon --system`.
pub fn daemon() -> anyhow::Result<i32> {
    let path = system::config_path();
    let config = system::load()?.ok_or_else(|| {
        anyhow!("there is no {}: set system mode up first (as root: latch setup --system)", path.display())
    })?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if me != config.daemon_uid {
        bail!(
            "Latch's system daemon runs as {} (user id {}), not as user id {me}: start it through its service, or as \
             that user",
            config.user,
            config.daemon_uid
        );
    }
    let mut paths = Paths::resolve(Some(config.state.clone()), None)?;
    paths.socket = config.socket.clone();
    let options = latch_daemon::Options { system: true, ..latch_daemon::Options::from_env() };
    let rt = latch_daemon::runtime::build()?;
    rt.block_on(latch_daemon::run_with(paths, options))?;
    Ok(0)
}

/// `latch setup --system [--undo [--purge]]`.
pub fn setup(a: SetupArgs) -> anyhow::Result<i32> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(super::Usage("system mode is set up by root: run `sudo latch setup --system`".into()).into());
    }
    let group = a.group.clone().unwrap_or_else(|| a.user.clone());
    for name in [&a.user, &group] {
        if !valid_name(name) {
            return Err(super::Usage(format!("{name:?} is not a user or group name (a-z, 0-9, _ and -)")).into());
        }
    }
    if a.undo { undo(&a.user, &group, a.purge) } else { set_up(&a.user, &group) }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    n.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn run_dir() -> PathBuf {
    system::place(system::RUN_DIR)
}

fn socket_dir() -> PathBuf {
    run_dir().join("daemon")
}

/// Real system paths and systemd only without the test prefix.
fn prefixed() -> bool {
    system::place("/") != Path::new("/")
}

fn systemd_is_init() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
}

fn set_up(user: &str, group: &str) -> anyhow::Result<i32> {
    let state = system::place(system::STATE_DIR);
    if id_of("group", group).is_none() {
        run("groupadd", &["--system", group])?;
    }
    if id_of("passwd", user).is_none() {
        let shell =
            ["/usr/sbin/nologin", "/sbin/nologin"].into_iter().find(|s| Path::new(s).exists()).unwrap_or("/bin/false");
        let home = state.display().to_string();
        run("useradd", &["--system", "--gid", group, "--no-create-home", "--home-dir", &home, "--shell", shell, user])?;
    }
    let uid = id_of("passwd", user).ok_or_else(|| anyhow!("user {user} was not created"))?;
    let gid = id_of("group", group).ok_or_else(|| anyhow!("group {group} was not created"))?;
    let person = std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty() && u != "root");
    if let Some(p) = &person {
        run("usermod", &["-aG", group, p])?;
    }
    dir(&system::place(ETC), 0o755, 0, 0)?;
    dir(&run_dir(), 0o755, 0, 0)?;
    dir(&socket_dir(), 0o750, uid, gid)?;
    dir(&state, 0o700, uid, gid)?;
    let config = SystemConfig {
        socket: socket_dir().join("latch.sock"),
        daemon_uid: uid,
        user: user.to_owned(),
        group: group.to_owned(),
        state: state.clone(),
    };
    write_root(&system::config_path(), &config.render())?;
    let exe = std::env::current_exe().context("cannot find the latch binary")?;
    let unit = system::place(UNIT);
    if let Some(d) = unit.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(d)?;
    }
    write_root(&unit, &unit_text(&exe, user, group))?;
    println!("system user   {user} (uid {uid}), group {group}");
    println!("socket        {} (the group may connect)", config.socket.display());
    println!("state         {} (only {user} may read it)", state.display());
    println!("clients       {} names the daemon; shims accept no other", system::config_path().display());
    match &person {
        Some(p) => println!("group         {p} joined {group}: log in again for it to apply"),
        None => println!("group         add the people who use Latch to {group} (usermod -aG {group} NAME)"),
    }
    if !prefixed() && systemd_is_init() {
        run("systemctl", &["daemon-reload"])?;
        run("systemctl", &["enable", "--now", "latch.service"])?;
        println!("service       latch.service enabled and started");
    } else {
        println!(
            "service       systemd is not running here, so nothing was started: start the daemon as {user}, e.g. \
             `setpriv --reuid={user} --regid={group} --init-groups {} daemon --system`",
            exe.display()
        );
    }
    Ok(0)
}

fn undo(user: &str, group: &str, purge: bool) -> anyhow::Result<i32> {
    let mut code = 0;
    let unit = system::place(UNIT);
    if !prefixed() && systemd_is_init() && unit.exists() {
        let _ = run("systemctl", &["disable", "--now", "latch.service"]);
    }
    remove_file(&unit)?;
    if !prefixed() && systemd_is_init() {
        let _ = run("systemctl", &["daemon-reload"]);
    }
    remove_file(&system::config_path())?;
    let _ = std::fs::remove_dir(system::place(ETC)); // kept when it holds managed.toml
    if socket_dir().exists() {
        std::fs::remove_dir_all(socket_dir()).with_context(|| format!("cannot remove {}", socket_dir().display()))?;
    }
    let _ = std::fs::remove_dir(run_dir());
    let state = system::place(system::STATE_DIR);
    if state.exists() {
        if state.join("audit.db").exists() && !purge {
            println!(
                "kept {}: it holds the audit log (add --purge to delete it too; copy it first if you need it)",
                state.display()
            );
            code = 1;
        } else {
            std::fs::remove_dir_all(&state).with_context(|| format!("cannot remove {}", state.display()))?;
        }
    }
    if id_of("passwd", user).is_some() {
        run("userdel", &[user])?;
    }
    if id_of("group", group).is_some() {
        run("groupdel", &[group])?;
    }
    println!("system mode removed{}", if code == 0 { "" } else { " (but for the state folder)" });
    Ok(code)
}

fn unit_text(exe: &Path, user: &str, group: &str) -> String {
    format!(
        "# Written by `latch setup --system`; removed by `latch setup --system --undo`.\n\
         [Unit]\nDescription=Latch system daemon (approvals for AI agents' tool calls)\nAfter=network.target\n\n\
         [Service]\nType=simple\nUser={user}\nGroup={group}\nExecStart={} daemon --system\n\
         RuntimeDirectory=latch/daemon\nRuntimeDirectoryMode=0750\nStateDirectory=latch\nStateDirectoryMode=0700\n\
         UMask=0077\nNoNewPrivileges=yes\nProtectSystem=full\nProtectHome=read-only\nPrivateTmp=yes\n\
         Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n",
        exe.display()
    )
}

/// The id of a user (`passwd`) or group (`group`) by name, from the
/// system's databases.
fn id_of(db: &str, name: &str) -> Option<u32> {
    let out = Command::new("getent").args([db, name]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).split(':').nth(2)?.trim().parse().ok()
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(cmd).args(args).status().with_context(|| format!("cannot run {cmd}"))?;
    if !status.success() {
        bail!("`{cmd} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn dir(path: &Path, mode: u32, uid: u32, gid: u32) -> anyhow::Result<()> {
    // Folders above it that are missing: root's, 0755, like /var/lib.
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
    }
    std::fs::DirBuilder::new().recursive(true).mode(mode).create(path)?;
    chown(path, uid, gid)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: a valid NUL-terminated path; lchown reads it only.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("cannot chown {}", path.display()));
    }
    Ok(())
}

/// Writes a root-owned 0644 file atomically.
fn write_root(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("latch-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    chown(&tmp, 0, 0)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn remove_file(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}
