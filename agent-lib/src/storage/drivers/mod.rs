//! The storage drivers, one file each, and the mount steps they share.

mod bind;
mod block;
mod ephemeral;
mod local;
mod ninep;
mod overlayfs;
mod virtiofs;
mod watchable;

use std::path::Path;

pub use bind::Bind;
pub use block::BlockDriver;
pub use ephemeral::Ephemeral;
pub use local::Local;
pub use ninep::NineP;
pub use overlayfs::Overlayfs;
pub use virtiofs::VirtioFs;
pub use watchable::WatchableBind;

use super::driver::DriverContext;
use super::error::StorageError;
use super::fs;
use super::options::MountOptions;
use super::request::StorageRequest;
use super::undo::Journal;
use crate::host::NodeKind;
use nix::mount::MsFlags;

/// The mount every driver ends with (Kata's `common_storage_handler`): create the mount point
/// (an empty file when bind-mounting a non-directory), mount `source` with `options`, then apply
/// the request's fsGroup.
pub(crate) fn mount_storage(
    ctx: &DriverContext<'_>,
    request: &StorageRequest,
    source: &str,
    fstype: &str,
    options: &MountOptions,
    undo: &mut Journal,
) -> Result<(), StorageError> {
    let target = &request.mount_point;
    let file = options.flags.contains(MsFlags::MS_BIND)
        && ctx
            .host
            .sysfs
            .stat(Path::new(source))
            .is_ok_and(|i| i.kind != NodeKind::Dir);
    fs::create_mount_point(ctx.host, target, file, undo)?;
    fs::mount(ctx.host, source, target, fstype, options, undo)?;
    if let Some(group) = request.fs_group {
        super::ownership::apply(ctx.host, target, group, options.read_only())?;
    }
    Ok(())
}

/// Rejects every driver option: for drivers that take none.
pub(crate) fn no_driver_options(request: &StorageRequest) -> Result<(), StorageError> {
    match request.driver_options.first() {
        Some(option) => Err(StorageError::request(
            "driver_options",
            format!(
                "{option:?} is not an option of the {} driver",
                request.driver
            ),
        )),
        None => Ok(()),
    }
}

/// The filesystem type of the request, or `default` when it has none.
pub(crate) fn fstype_or<'a>(request: &'a StorageRequest, default: &'a str) -> &'a str {
    if request.fstype.is_empty() {
        default
    } else {
        &request.fstype
    }
}

/// Fails when the request has no source.
pub(crate) fn need_source(request: &StorageRequest) -> Result<&str, StorageError> {
    if request.source.is_empty() {
        return Err(StorageError::request(
            "source",
            format!("the {} driver needs a source", request.driver),
        ));
    }
    Ok(&request.source)
}
