//! The block drivers, one table: each finds its disk its own way (PCI path, `/dev` name, SCSI
//! address, pmem name), waiting up to the hotplug timeout, and all mount it the same way.

use async_trait::async_trait;

use super::{fstype_or, mount_storage, need_source};
use crate::device::{self, BlockDevice, PciPath};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::options::MountOptions;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Journal;

/// Kata's driver option asking for a fresh ext4 filesystem on the volume.
const CREATE_FS: &str = "create_filesystem";
/// Kata's driver option asking CDH for LUKS2 ephemeral encryption.
const EPHEMERAL_ENCRYPTION: &str = "encryption_key=ephemeral";

/// How a block driver finds its disk from the request's `source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    /// A PCI path (`02/01`) of a virtio-blk device, or a `/dev/...` block node.
    VirtioBlkPci,
    /// `/dev/<name>` of a virtio-blk MMIO disk.
    VirtioBlkMmio,
    /// `<id>:<lun>`; the SCSI hosts are asked to scan first.
    Scsi,
    /// `/dev/pmemN`; the runtime sends the `dax` option, which goes to the filesystem as data.
    Pmem,
}

/// A block storage driver: its name and how it finds its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockDriver {
    name: &'static str,
    lookup: Lookup,
}

impl BlockDriver {
    /// `blk`: a virtio-blk PCI disk named by its PCI path, or a `/dev` block device.
    pub const BLK: BlockDriver = BlockDriver {
        name: "blk",
        lookup: Lookup::VirtioBlkPci,
    };
    /// `mmioblk`: a virtio-blk MMIO disk named by its `/dev` path.
    pub const MMIOBLK: BlockDriver = BlockDriver {
        name: "mmioblk",
        lookup: Lookup::VirtioBlkMmio,
    };
    /// `scsi`: a SCSI disk named by its `<id>:<lun>` address.
    pub const SCSI: BlockDriver = BlockDriver {
        name: "scsi",
        lookup: Lookup::Scsi,
    };
    /// `nvdimm`: a persistent-memory disk (`/dev/pmemN`), usually mounted with DAX.
    pub const NVDIMM: BlockDriver = BlockDriver {
        name: "nvdimm",
        lookup: Lookup::Pmem,
    };

    async fn find(
        &self,
        ctx: &DriverContext<'_>,
        source: &str,
    ) -> Result<BlockDevice, StorageError> {
        let devices = ctx.devices;
        Ok(match self.lookup {
            Lookup::VirtioBlkPci if source.starts_with("/dev") => {
                device::block_device_node(devices, source)?
            }
            Lookup::VirtioBlkPci => {
                let path: PciPath = source.parse().map_err(device::DeviceError::from)?;
                device::virtio_blk_pci(devices, &path).await?
            }
            Lookup::VirtioBlkMmio => device::virtio_blk_mmio(devices, source).await?,
            Lookup::Scsi => device::scsi(devices, source).await?,
            Lookup::Pmem => device::pmem(devices, source).await?,
        })
    }
}

#[async_trait]
impl StorageDriver for BlockDriver {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        check_driver_options(request)?;
        let options = MountOptions::parse(&request.options)?;
        let device = self.find(ctx, need_source(request)?).await?;
        tracing::debug!(device = %device.path.display(), major = device.major,
            minor = device.minor, "block storage device found");
        let source = device.path.to_string_lossy();
        let fstype = fstype_or(request, "ext4");
        mount_storage(ctx, request, &source, fstype, &options, undo)
    }
}

/// Checks the driver options of a block storage: Kata's two are recognised but not done here.
fn check_driver_options(request: &StorageRequest) -> Result<(), StorageError> {
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
