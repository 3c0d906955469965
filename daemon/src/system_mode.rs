//! The daemon's side of system mode (issue 20): run as Latch's system
//! user, it listens in a folder its group may enter and on a socket its
//! group may connect to. Nobody else may write either: the folder is the
//! daemon's own (0750), so a user of the group cannot replace the socket.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::{DaemonError, io_err};

/// The socket's folder: the daemon's own, mode 0750 (created if missing).
pub(crate) fn socket_dir(dir: &Path) -> Result<(), DaemonError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    let me = crate::audit::current_uid();
    if meta.uid() != me {
        return Err(DaemonError::NotOurs { path: dir.to_owned(), owner: meta.uid(), me });
    }
    if meta.mode() & 0o777 != 0o750 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).map_err(io_err(dir))?;
    }
    Ok(())
}

/// The bound socket: the group may connect (0660).
pub(crate) fn share_socket(socket: &Path) -> Result<(), DaemonError> {
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660)).map_err(io_err(socket))
}
