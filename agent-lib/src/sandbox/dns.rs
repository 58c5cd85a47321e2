//! The sandbox's DNS: `/run/kata-containers/sandbox/resolv.conf`, bound over `/etc/resolv.conf`.

use std::path::Path;

use super::SandboxError;
use crate::host::{Host, NodeKind};
use crate::undo::Undo;

/// The sandbox's resolv.conf, as Kata names it.
pub const SANDBOX_RESOLV_CONF: &str = "/run/kata-containers/sandbox/resolv.conf";
/// The guest's resolv.conf.
pub const GUEST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Writes `lines` (`nameserver 10.0.0.1`, `search ...`) to the sandbox resolv.conf and binds
/// it over /etc/resolv.conf. Nothing happens without lines or when the guest has no
/// /etc/resolv.conf (as Kata).
pub(crate) fn setup(
    host: &Host,
    lines: &[String],
    cleanup: &mut Vec<Undo>,
) -> Result<(), SandboxError> {
    if lines.is_empty() {
        return Ok(());
    }
    let guest = Path::new(GUEST_RESOLV_CONF);
    match host.sysfs.stat(guest) {
        Err(_) => {
            tracing::info!("no /etc/resolv.conf in the guest: sandbox DNS not set up");
            return Ok(());
        }
        Ok(info) if info.kind == NodeKind::Dir => return Err(SandboxError::ResolvConfIsDirectory),
        Ok(_) => {}
    }
    let file = Path::new(SANDBOX_RESOLV_CONF);
    if let Some(dir) = file.parent() {
        host.agent_files
            .create_dir_all(dir)
            .map_err(SandboxError::step(format!("create {}", dir.display())))?;
    }
    let mut content = lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n");
    content.push('\n');
    host.agent_files
        .create_file(file, content.as_bytes(), 0o644)
        .map_err(SandboxError::step(format!("write {SANDBOX_RESOLV_CONF}")))?;
    cleanup.push(Undo::Remove(file.to_owned()));
    host.mounter
        .bind(file, guest, false)
        .map_err(SandboxError::step(format!(
            "bind {SANDBOX_RESOLV_CONF} on {GUEST_RESOLV_CONF}"
        )))?;
    cleanup.push(Undo::Unmount(guest.to_owned()));
    Ok(())
}
