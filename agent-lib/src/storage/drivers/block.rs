//! What the block drivers share: mounting a found block device.

use super::{fstype_or, mount_storage};
use crate::device::BlockDevice;
use crate::storage::driver::DriverContext;
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Undo;

/// Kata's driver option asking for a fresh ext4 filesystem on the volume.
const CREATE_FS: &str = "create_filesystem";
/// Kata's driver option asking CDH for LUKS2 ephemeral encryption.
const EPHEMERAL_ENCRYPTION: &str = "encryption_key=ephemeral";

/// Checks the driver options of a block storage: Kata's two are recognised but not done here.
pub(super) fn check_driver_options(request: &StorageRequest) -> Result<(), StorageError> {
    match request.driver_options.first().map(String::as_str) {
        None => Ok(()),
        Some(option @ (CREATE_FS | EPHEMERAL_ENCRYPTION)) => Err(StorageError::Unsupported(
            format!("block storage driver option {option:?} (mkfs / CDH encryption)"),
        )),
        Some(option) => Err(StorageError::request(
            "driver_options",
            format!(
                "{option:?} is not an option of the {} driver",
                request.driver
            ),
        )),
    }
}

/// Mounts `device` as the request says.
pub(super) fn mount_device(
    ctx: &DriverContext<'_>,
    request: &StorageRequest,
    device: &BlockDevice,
    options: &MountOptions,
    undo: &mut Undo,
) -> Result<(), StorageError> {
    tracing::debug!(device = %device.path.display(), major = device.major, minor = device.minor,
        "block storage device found");
    let source = device.path.to_string_lossy();
    let fstype = fstype_or(request, "ext4");
    mount_storage(ctx, request, &source, fstype, options, undo)
}
