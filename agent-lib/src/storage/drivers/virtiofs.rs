//! `virtio-fs`: the host's shared directory (or a volume) over virtio-fs.

use async_trait::async_trait;

use super::{fstype_or, mount_storage, need_source, no_driver_options};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Journal;

/// The tag of the shared directory a guest may mount before the agent starts.
pub const SHARED_FS_TAG: &str = "kataShared";

/// `virtio-fs`: mounts the tag `source` (type `virtiofs`). When the source is the
/// [`SHARED_FS_TAG`] and something is already mounted on the mount point (the guest's premount),
/// nothing is done and nothing will be undone.
#[derive(Debug, Default)]
pub struct VirtioFs;

#[async_trait]
impl StorageDriver for VirtioFs {
    fn name(&self) -> &'static str {
        "virtio-fs"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        no_driver_options(request)?;
        let options = MountOptions::parse(&request.options)?;
        let source = need_source(request)?;
        if source == SHARED_FS_TAG {
            let premounted = ctx
                .host
                .mounter
                .is_mounted(&request.mount_point)
                .map_err(|e| StorageError::os("read mount table", &request.mount_point, e))?;
            if premounted {
                tracing::info!(mount_point = %request.mount_point.display(),
                    "shared directory already mounted; keeping the premount");
                return Ok(());
            }
        }
        let fstype = fstype_or(request, "virtiofs");
        mount_storage(ctx, request, source, fstype, &options, undo)
    }
}
