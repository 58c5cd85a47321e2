//! The sandbox's shared namespaces, pinned under [`SANDBOX_NS_DIR`]: IPC and UTS made at
//! CreateSandbox, the pid namespace of the first container's init when it is created. Each is a
//! bind mount of its nsfs file, so it lives as long as the sandbox, whatever happens to the
//! process it came from, and a path to it never names another process's namespace.

use std::path::{Path, PathBuf};

use super::SandboxError;
use crate::host::{Host, NamespaceKind};
use crate::undo::Undo;

/// Where the shared namespaces are pinned.
pub const SANDBOX_NS_DIR: &str = "/run/sandbox-ns";

/// Creates and pins a namespace of `kind` (the UTS one named `hostname`); returns its path.
pub(crate) fn pin(
    host: &Host,
    kind: NamespaceKind,
    hostname: &str,
    cleanup: &mut Vec<Undo>,
) -> Result<PathBuf, SandboxError> {
    let dir = Path::new(SANDBOX_NS_DIR);
    host.agent_files
        .create_dir_all(dir)
        .map_err(SandboxError::step(format!("create {SANDBOX_NS_DIR}")))?;
    let target = dir.join(kind.name());
    host.agent_files
        .create_file(&target, b"", 0o444)
        .map_err(SandboxError::step(format!("create {}", target.display())))?;
    cleanup.push(Undo::Remove(target.clone()));
    let hostname = (kind == NamespaceKind::Uts && !hostname.is_empty()).then_some(hostname);
    host.system
        .pin_namespace(kind, hostname, &target)
        .map_err(SandboxError::step(format!(
            "pin the shared {} namespace",
            kind.name()
        )))?;
    cleanup.push(Undo::Unmount(target.clone()));
    Ok(target)
}

/// Pins the pid namespace of `init_pid` (a live, unreaped child of the agent); returns the
/// path of the pin.
pub(crate) fn pin_pid(
    host: &Host,
    init_pid: i32,
    cleanup: &mut Vec<Undo>,
) -> Result<PathBuf, SandboxError> {
    let dir = Path::new(SANDBOX_NS_DIR);
    host.agent_files
        .create_dir_all(dir)
        .map_err(SandboxError::step(format!("create {SANDBOX_NS_DIR}")))?;
    let target = dir.join("pid");
    host.agent_files
        .create_file(&target, b"", 0o444)
        .map_err(SandboxError::step(format!("create {}", target.display())))?;
    cleanup.push(Undo::Remove(target.clone()));
    host.launcher
        .pin_pid_namespace(init_pid, &target)
        .map_err(SandboxError::step(format!(
            "pin the pid namespace of pid {init_pid}"
        )))?;
    cleanup.push(Undo::Unmount(target.clone()));
    Ok(target)
}
