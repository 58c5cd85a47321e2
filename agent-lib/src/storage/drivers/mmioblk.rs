//! `mmioblk`: a virtio-blk MMIO disk named by its `/dev` path.

use async_trait::async_trait;

use super::block::{check_driver_options, mount_device};
use super::need_source;
use crate::device;
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Undo;

/// `mmioblk`: `source` is `/dev/<name>`, waited for up to the hotplug timeout.
#[derive(Debug, Default)]
pub struct VirtioBlkMmio;

#[async_trait]
impl StorageDriver for VirtioBlkMmio {
    fn name(&self) -> &'static str {
        "mmioblk"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Undo,
    ) -> Result<(), StorageError> {
        check_driver_options(request)?;
        let options = MountOptions::parse(&request.options)?;
        let device = device::virtio_blk_mmio(ctx.devices, need_source(request)?).await?;
        mount_device(ctx, request, &device, &options, undo)
    }
}
