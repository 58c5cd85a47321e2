//! `blk`: a virtio-blk PCI disk named by its PCI path, or a `/dev` block device.

use async_trait::async_trait;

use super::block::{check_driver_options, mount_device};
use super::need_source;
use crate::device::{self, PciPath};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Undo;

/// `blk`: `source` is a PCI path (`02/01`) of a virtio-blk device, waited for up to the hotplug
/// timeout, or a `/dev/...` node that must be a block device.
#[derive(Debug, Default)]
pub struct VirtioBlkPci;

#[async_trait]
impl StorageDriver for VirtioBlkPci {
    fn name(&self) -> &'static str {
        "blk"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Undo,
    ) -> Result<(), StorageError> {
        check_driver_options(request)?;
        let options = MountOptions::parse(&request.options)?;
        let source = need_source(request)?;
        let device = if source.starts_with("/dev") {
            device::block_device_node(ctx.devices, source)?
        } else {
            let path: PciPath = source.parse().map_err(device::DeviceError::from)?;
            device::virtio_blk_pci(ctx.devices, &path).await?
        };
        mount_device(ctx, request, &device, &options, undo)
    }
}
