//! fsGroup ownership: give a volume's files the pod's group and group permissions, as Kubelet
//! does for `securityContext.fsGroup`.

use std::path::{Path, PathBuf};

use super::error::StorageError;
use super::request::{FsGroup, FsGroupPolicy};
use crate::host::{Host, NodeKind};

/// Group read/write.
const RW_MASK: u32 = 0o660;
/// Group read (read-only volumes).
const RO_MASK: u32 = 0o440;
/// Search permission added to directories.
const EXEC_MASK: u32 = 0o110;
/// New files in a directory inherit its group.
pub(crate) const MODE_SETGID: u32 = 0o2000;

/// Applies `group` to the volume at `root`: every file and directory (links skipped) gets the
/// group, group read (and write unless `read_only`) permission, directories also search
/// permission and setgid. With [`FsGroupPolicy::OnRootMismatch`] nothing is done when the root
/// already has the group and those permissions.
pub(crate) fn apply(
    host: &Host,
    root: &Path,
    group: FsGroup,
    read_only: bool,
) -> Result<(), StorageError> {
    let mask = if read_only { RO_MASK } else { RW_MASK };
    let meta = host
        .sysfs
        .symlink_metadata(root)
        .map_err(|e| StorageError::os("inspect volume root", root, e))?;
    if group.policy == FsGroupPolicy::OnRootMismatch && meta.gid == group.gid {
        let want = mask | EXEC_MASK;
        if meta.mode & want == want && meta.mode & MODE_SETGID != 0 {
            tracing::info!(root = %root.display(), gid = group.gid,
                "volume root already matches fsGroup; ownership unchanged");
            return Ok(());
        }
    }
    tracing::info!(root = %root.display(), gid = group.gid, "changing volume ownership");
    let mut stack: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = host
            .sysfs
            .symlink_metadata(&path)
            .map_err(|e| StorageError::os("inspect", &path, e))?;
        let mut bits = mask;
        match meta.kind {
            NodeKind::Symlink => continue,
            NodeKind::Dir => {
                let names = host
                    .sysfs
                    .read_dir(&path)
                    .map_err(|e| StorageError::os("list", &path, e))?;
                stack.extend(names.into_iter().map(|n| path.join(n)));
                bits |= EXEC_MASK | MODE_SETGID;
            }
            _ => {}
        }
        host.agent_files
            .chown(&path, None, Some(group.gid))
            .map_err(|e| StorageError::os("chown", &path, e))?;
        host.agent_files
            .set_mode(&path, meta.mode | bits)
            .map_err(|e| StorageError::os("chmod", &path, e))?;
    }
    Ok(())
}

/// Gives `path` group `gid` and the setgid bit (the `fsgid=` option of ephemeral and local
/// storages).
pub(crate) fn set_fsgid(host: &Host, path: &Path, gid: u32) -> Result<(), StorageError> {
    host.agent_files
        .chown(path, None, Some(gid))
        .map_err(|e| StorageError::os("chown", path, e))?;
    let meta = host
        .sysfs
        .symlink_metadata(path)
        .map_err(|e| StorageError::os("inspect", path, e))?;
    host.agent_files
        .set_mode(path, meta.mode | MODE_SETGID)
        .map_err(|e| StorageError::os("chmod", path, e))
}
