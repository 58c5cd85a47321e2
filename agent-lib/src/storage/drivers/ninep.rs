//! `9p`: a host directory over virtio-9p (the Go agent's driver; Kata's Rust agent dropped it).

use async_trait::async_trait;

use super::{mount_storage, need_source, no_driver_options};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Journal;

/// `9p`: mounts the tag `source` with type `9p`, adding `trans=virtio` and
/// `version=9p2000.L` unless given. Another transport than virtio is an error: a guest only has
/// virtio.
#[derive(Debug, Default)]
pub struct NineP;

#[async_trait]
impl StorageDriver for NineP {
    fn name(&self) -> &'static str {
        "9p"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        no_driver_options(request)?;
        let mut list = request.options.clone();
        match StorageRequest::find(&list, "trans") {
            None => list.push("trans=virtio".into()),
            Some("virtio") => {}
            Some(other) => {
                return Err(StorageError::option(
                    format!("trans={other}"),
                    "9p storages use the virtio transport",
                ));
            }
        }
        if StorageRequest::find(&list, "version").is_none() {
            list.push("version=9p2000.L".into());
        }
        if !request.fstype.is_empty() && request.fstype != "9p" {
            return Err(StorageError::request(
                "fstype",
                format!("{:?} for the 9p driver", request.fstype),
            ));
        }
        let options = MountOptions::parse(&list)?;
        mount_storage(ctx, request, need_source(request)?, "9p", &options, undo)
    }
}
