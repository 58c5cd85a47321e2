//! Storage: the volumes of CreateSandbox and CreateContainer, one driver per Kata driver
//! string, a refcount table keyed by mount point, fsGroup ownership, and the storage RPCs'
//! operations (swap, volume stats and resize, ephemeral remounts, virtio-fs share refresh).
//!
//! Entry points: [`Storages::add`], [`Storages::release`] and [`Storages::release_all`]; the
//! [`Agent`](crate::Agent) owns one [`Storages`].

mod confine;
mod driver;
pub mod drivers;
mod error;
mod fs;
mod mirror;
mod options;
mod ownership;
mod request;
mod table;
mod undo;
mod volume;

pub use confine::{KATA_GUEST_DIR, MountRoots};
pub use driver::{DriverContext, DriverRegistry, StorageDriver};
pub use error::StorageError;
pub use mirror::{MAX_BYTES as WATCH_MAX_BYTES, MAX_ENTRIES as WATCH_MAX_ENTRIES};
pub use options::{MountOptions, PROPAGATION};
pub use request::{FsGroup, FsGroupPolicy, StorageRequest};
pub use table::{StorageContext, StorageInfo, Storages};
pub use undo::{Gate, Journal};
pub use volume::{
    SHARED_CONTAINERS_DIR, VolumeStats, VolumeUsage, add_swap_path, add_swap_pci,
    remove_stale_virtiofs_share_mounts, resize_volume, update_ephemeral_mounts, volume_stats,
};
