//! File system steps shared by the drivers, each recorded in a [`Journal`] as it succeeds.

use std::path::{Path, PathBuf};

use super::error::StorageError;
use super::options::MountOptions;
use super::undo::Journal;
use crate::host::{Host, MountSpec, NodeKind};
use nix::errno::Errno;
use nix::mount::MsFlags;

/// Creates directory `path` and its missing parents; records each directory it created.
pub(crate) fn create_dir_all(
    host: &Host,
    path: &Path,
    undo: &mut Journal,
) -> Result<(), StorageError> {
    let missing: Vec<PathBuf> = path
        .ancestors()
        .take_while(|p| !host.sysfs.exists(p))
        .map(Path::to_path_buf)
        .collect();
    host.agent_files
        .create_dir_all(path)
        .map_err(|e| StorageError::os("create directory", path, e))?;
    match host.sysfs.stat(path) {
        Ok(info) if info.kind == NodeKind::Dir => {}
        Ok(_) => {
            return Err(StorageError::os(
                "create directory",
                path,
                Errno::ENOTDIR.into(),
            ));
        }
        Err(e) => return Err(StorageError::os("create directory", path, e)),
    }
    for dir in missing.into_iter().rev() {
        undo.created_dir(dir);
    }
    Ok(())
}

/// Creates the mount point `target` for a mount of `source`: a directory, or an empty file
/// when bind-mounting something that is not a directory.
pub(crate) fn create_mount_point(
    host: &Host,
    target: &Path,
    file: bool,
    undo: &mut Journal,
) -> Result<(), StorageError> {
    if !file {
        return create_dir_all(host, target, undo);
    }
    if let Some(parent) = target.parent() {
        create_dir_all(host, parent, undo)?;
    }
    match host.sysfs.stat(target) {
        Ok(info) if info.kind != NodeKind::Dir => return Ok(()),
        Ok(_) => {
            return Err(StorageError::os(
                "create mount point",
                target,
                Errno::EISDIR.into(),
            ));
        }
        Err(_) => {}
    }
    host.agent_files
        .create_file(target, b"", 0o644)
        .map_err(|e| StorageError::os("create mount point", target, e))?;
    undo.created_file(target);
    Ok(())
}

/// Mounts `source` of type `fstype` on `target` with `options`, then applies their
/// propagation (a second mount(2): the kernel ignores propagation flags on a new mount) and,
/// for a read-only bind mount, remounts it read-only (a bind mount ignores `MS_RDONLY`).
pub(crate) fn mount(
    host: &Host,
    source: &str,
    target: &Path,
    fstype: &str,
    options: &MountOptions,
    undo: &mut Journal,
) -> Result<(), StorageError> {
    let _span = tracing::info_span!("mount_storage", target = %target.display(), fstype).entered();
    let bind = options.flags.contains(MsFlags::MS_BIND);
    let spec = MountSpec {
        source: Some(source.to_owned()),
        target: target.to_owned(),
        fstype: (!bind).then(|| fstype.to_owned()),
        flags: options.flags,
        data: if bind { None } else { options.data_string() },
    };
    tracing::info!(source, target = %target.display(), fstype, flags = ?options.flags,
        data = ?spec.data, "mounting storage");
    host.mounter
        .mount(&spec)
        .map_err(|e| StorageError::os("mount", target, e))?;
    undo.mounted(target);
    if bind && options.read_only() {
        let remount = MountSpec {
            source: None,
            target: target.to_owned(),
            fstype: None,
            flags: options.flags | MsFlags::MS_REMOUNT,
            data: None,
        };
        host.mounter
            .mount(&remount)
            .map_err(|e| StorageError::os("remount read-only", target, e))?;
    }
    if !options.propagation.is_empty() {
        let change = MountSpec {
            source: None,
            target: target.to_owned(),
            fstype: None,
            flags: options.propagation,
            data: None,
        };
        host.mounter
            .mount(&change)
            .map_err(|e| StorageError::os("set mount propagation", target, e))?;
    }
    Ok(())
}
