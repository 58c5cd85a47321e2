//! `bind`: a bind mount of a guest path (not one of Kata's drivers; for guest-side volumes).

use std::path::Path;

use async_trait::async_trait;
use nix::mount::MsFlags;

use super::{mount_storage, need_source, no_driver_options};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Journal;

/// `bind`: bind-mounts the existing guest path `source` (a directory or a file) on the mount
/// point; `ro` makes it read-only, `rbind` recursive, propagation options apply.
#[derive(Debug, Default)]
pub struct Bind;

#[async_trait]
impl StorageDriver for Bind {
    fn name(&self) -> &'static str {
        "bind"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        no_driver_options(request)?;
        let mut options = MountOptions::parse(&request.options)?;
        options.flags |= MsFlags::MS_BIND;
        let source = need_source(request)?;
        crate::storage::request::check_absolute("source", Path::new(source))?;
        ctx.host
            .sysfs
            .stat(Path::new(source))
            .map_err(|e| StorageError::os("inspect bind source", source, e))?;
        mount_storage(ctx, request, source, "bind", &options, undo)
    }
}
