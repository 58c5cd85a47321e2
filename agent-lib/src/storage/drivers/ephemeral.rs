//! `ephemeral`: a tmpfs (Kubernetes memory-backed emptyDir), or a hugetlbfs with its huge
//! pages reserved first.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{fstype_or, mount_storage, no_driver_options};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::ownership::set_fsgid;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Journal;

/// Where the kernel's huge page pools are.
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";

/// `ephemeral`: mounts a tmpfs (source and type default to `tmpfs`). The `fsgid=<gid>` option
/// gives the mount point that group and the setgid bit. With type `hugetlbfs`, the options
/// `pagesize=<bytes>` and `size=<bytes>` are required and `size / pagesize` pages are reserved
/// in `hugepages-<pagesize/1024>kB/nr_hugepages` before mounting (the reservation is put back
/// if the storage fails, and kept when it is released, as in Kata).
#[derive(Debug, Default)]
pub struct Ephemeral;

#[async_trait]
impl StorageDriver for Ephemeral {
    fn name(&self) -> &'static str {
        "ephemeral"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        no_driver_options(request)?;
        let fstype = fstype_or(request, "tmpfs");
        let fsgid = match StorageRequest::find(&request.options, "fsgid") {
            Some(v) => Some(
                v.parse::<u32>()
                    .map_err(|_| StorageError::option(format!("fsgid={v}"), "not a group id"))?,
            ),
            None => None,
        };
        let options = MountOptions::parse(&StorageRequest::without(&request.options, &["fsgid"]))?;
        match fstype {
            "tmpfs" => {}
            "hugetlbfs" => reserve_huge_pages(ctx, &options, undo)?,
            other => {
                return Err(StorageError::request(
                    "fstype",
                    format!("{other:?}: ephemeral storages are tmpfs or hugetlbfs"),
                ));
            }
        }
        let source = if request.source.is_empty() {
            fstype
        } else {
            &request.source
        };
        mount_storage(ctx, request, source, fstype, &options, undo)?;
        if let Some(gid) = fsgid {
            set_fsgid(ctx.host, &request.mount_point, gid)?;
        }
        Ok(())
    }
}

/// Reserves the huge pages a hugetlbfs storage needs and checks the kernel gave them all.
fn reserve_huge_pages(
    ctx: &DriverContext<'_>,
    options: &MountOptions,
    undo: &mut Journal,
) -> Result<(), StorageError> {
    let number =
        |key: &str| -> Result<u64, StorageError> {
            let value = StorageRequest::find(&options.data, key).ok_or_else(|| {
                StorageError::option(key, "hugetlbfs storages need pagesize= and size=")
            })?;
            value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                StorageError::option(format!("{key}={value}"), "not a size in bytes")
            })
        };
    let pagesize = number("pagesize")?;
    let size = number("size")?;
    if !pagesize.is_multiple_of(1024) {
        return Err(StorageError::option(
            format!("pagesize={pagesize}"),
            "not a whole number of KiB",
        ));
    }
    let pages = size / pagesize;
    let path = PathBuf::from(format!(
        "{HUGEPAGES}/hugepages-{}kB/nr_hugepages",
        pagesize / 1024
    ));
    let sysfs = &*ctx.host.sysfs;
    let old = sysfs
        .read(&path)
        .map_err(|e| StorageError::os("read huge page pool", &path, e))?;
    tracing::info!(path = %path.display(), pages, "reserving huge pages");
    // Recorded first: a failed write may still have changed the pool.
    undo.overwrote(&path, old);
    sysfs
        .write(&path, pages.to_string().as_bytes())
        .map_err(|e| StorageError::os("reserve huge pages", &path, e))?;
    let got = sysfs
        .read_string(&path)
        .map_err(|e| StorageError::os("read huge page pool", &path, e))?;
    let got = got.parse::<u64>().map_err(|_| {
        StorageError::os(
            "read huge page pool",
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{got:?}")),
        )
    })?;
    if got != pages {
        return Err(StorageError::HugePages {
            path,
            wanted: pages,
            got,
        });
    }
    Ok(())
}
