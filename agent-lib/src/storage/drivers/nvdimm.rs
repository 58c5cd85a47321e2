//! `nvdimm`: a persistent-memory disk (`/dev/pmemN`), usually mounted with DAX.

use async_trait::async_trait;

use super::block::{check_driver_options, mount_device};
use super::need_source;
use crate::device;
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Undo;

/// `nvdimm`: `source` is `/dev/pmemN`, waited for up to the hotplug timeout. The runtime sends
/// the `dax` option, which goes to the filesystem as data.
#[derive(Debug, Default)]
pub struct Nvdimm;

#[async_trait]
impl StorageDriver for Nvdimm {
    fn name(&self) -> &'static str {
        "nvdimm"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Undo,
    ) -> Result<(), StorageError> {
        check_driver_options(request)?;
        let options = MountOptions::parse(&request.options)?;
        let device = device::pmem(ctx.devices, need_source(request)?).await?;
        mount_device(ctx, request, &device, &options, undo)
    }
}
