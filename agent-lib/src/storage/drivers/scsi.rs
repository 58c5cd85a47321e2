//! `scsi`: a SCSI disk named by its `<id>:<lun>` address.

use async_trait::async_trait;

use super::block::{check_driver_options, mount_device};
use super::need_source;
use crate::device;
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Undo;

/// `scsi`: `source` is `<id>:<lun>`; the SCSI hosts are asked to scan, then the disk is waited
/// for up to the hotplug timeout.
#[derive(Debug, Default)]
pub struct Scsi;

#[async_trait]
impl StorageDriver for Scsi {
    fn name(&self) -> &'static str {
        "scsi"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Undo,
    ) -> Result<(), StorageError> {
        check_driver_options(request)?;
        let options = MountOptions::parse(&request.options)?;
        let device = device::scsi(ctx.devices, need_source(request)?).await?;
        mount_device(ctx, request, &device, &options, undo)
    }
}
