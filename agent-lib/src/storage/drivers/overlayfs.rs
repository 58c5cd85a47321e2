//! `overlayfs`: an overlay mount, optionally with a container-private writable layer.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{fstype_or, mount_storage, need_source};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::fs;
use crate::storage::options::MountOptions;
use crate::storage::request::{StorageRequest, check_absolute};
use crate::storage::undo::Journal;

/// The option asking for a writable upper layer under the container's directory.
pub const OVERLAY_RW: &str = "io.katacontainers.fs-opt.overlay-rw";
/// The driver option naming a directory to create before mounting.
pub const CREATE_DIR: &str = "io.katacontainers.volume.overlayfs.create_directory";
/// Where containers' directories are.
pub const CONTAINER_BASE: &str = "/run/kata-containers";

/// `overlayfs`: mounts an overlay (type `overlay` unless given). With the [`OVERLAY_RW`]
/// option, creates `/run/kata-containers/<cid>/{upper,work}` and uses them as `upperdir` and
/// `workdir`; each [`CREATE_DIR`]`=<dir>` driver option creates `<dir>` first.
#[derive(Debug, Default)]
pub struct Overlayfs;

#[async_trait]
impl StorageDriver for Overlayfs {
    fn name(&self) -> &'static str {
        "overlayfs"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        let mut create = Vec::new();
        for option in &request.driver_options {
            match option.split_once('=') {
                Some((CREATE_DIR, dir)) => {
                    check_absolute("driver_options", Path::new(dir))?;
                    create.push(PathBuf::from(dir));
                }
                _ => {
                    return Err(StorageError::request(
                        "driver_options",
                        format!("{option:?} is not an option of the overlayfs driver"),
                    ));
                }
            }
        }
        let mut list = StorageRequest::without(&request.options, &[OVERLAY_RW]);
        let mut fstype = fstype_or(request, "overlay");
        let sysfs = &*ctx.host.sysfs;
        if StorageRequest::has(&request.options, OVERLAY_RW) {
            let cid = ctx.container_id.ok_or_else(|| {
                StorageError::option(OVERLAY_RW, "needs a container (CreateContainer)")
            })?;
            if cid.is_empty() || cid.contains('/') || cid == "." || cid == ".." {
                return Err(StorageError::request(
                    "container id",
                    format!("{cid:?} cannot name a directory"),
                ));
            }
            let dir = Path::new(CONTAINER_BASE).join(cid);
            let (upper, work) = (dir.join("upper"), dir.join("work"));
            for layer in [&work, &upper] {
                let existed = sysfs.exists(layer);
                fs::create_dir_all(ctx.host, layer, undo)?;
                if !existed {
                    // The container's writes live there: they go with the storage.
                    undo.created_tree(layer);
                }
            }
            list.push(format!("upperdir={}", upper.display()));
            list.push(format!("workdir={}", work.display()));
            fstype = "overlay";
        }
        let options = MountOptions::parse(&list)?;
        for dir in &create {
            fs::create_dir_all(ctx.host, dir, undo)?;
        }
        mount_storage(ctx, request, need_source(request)?, fstype, &options, undo)
    }
}
