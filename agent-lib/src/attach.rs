//! What the sandbox and its containers ask of the device and storage subsystems.
//!
//! CreateSandbox and CreateContainer carry hot-plugged devices and storages (rootfs, volumes);
//! the device handlers ([`crate::device::add_devices`]) and the storage table
//! ([`crate::storage::Storages`]) do the work. [`Attach`] is the narrow seam between them and
//! the sandbox and container code: one call per step, each undone by its counterpart.

use std::sync::Arc;
use tracing::Instrument;

use oci_spec::runtime::Spec;

pub use crate::device::{DeviceAdditions, DeviceRequest};
pub use crate::storage::StorageRequest;

use crate::device::{DeviceContext, DeviceError, add_devices};
use crate::storage::{StorageContext, StorageError, Storages};

/// The owner name of the sandbox's own storages; container ids cannot take it (they start with
/// a letter or digit).
pub const SANDBOX_OWNER: &str = "<sandbox>";

/// Why devices or storages could not be set up or released.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A device handler failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Device handlers and storages, as the sandbox and containers use them.
#[derive(Clone, Debug)]
pub struct Attach {
    devices: DeviceContext,
    storages: Arc<Storages>,
}

impl Attach {
    /// Over the agent's device context and storage table.
    pub fn new(devices: DeviceContext, storages: Arc<Storages>) -> Self {
        Attach { devices, storages }
    }

    /// Waits for container `cid`'s devices and rewrites `spec` (device numbers, paths, PCI
    /// addresses) for the guest. Nothing to undo: handlers leave no state behind.
    pub async fn add_devices(
        &self,
        cid: &str,
        devices: &[DeviceRequest],
        spec: &mut Spec,
    ) -> Result<DeviceAdditions, AttachError> {
        if devices.is_empty() {
            return Ok(DeviceAdditions::default());
        }
        tracing::debug!(container = cid, count = devices.len(), "adding devices");
        let span = tracing::info_span!("add_devices", container_id = cid, count = devices.len());
        Ok(add_devices(&self.devices, devices, spec)
            .instrument(span)
            .await?)
    }

    /// Mounts `storages` for container `cid`, all or nothing.
    pub async fn add_container_storages(
        &self,
        cid: &str,
        storages: &[StorageRequest],
    ) -> Result<(), AttachError> {
        if storages.is_empty() {
            return Ok(());
        }
        let span = tracing::info_span!("add_storages", container_id = cid, count = storages.len());
        self.storages
            .add(&StorageContext::container(cid), storages, cid)
            .instrument(span)
            .await?;
        Ok(())
    }

    /// Gives back container `cid`'s uses of its storages (the last user unmounts).
    pub fn release_container_storages(&self, cid: &str) -> Result<(), AttachError> {
        Ok(self.storages.release(cid)?)
    }

    /// Mounts the sandbox's own storages, all or nothing.
    pub async fn add_sandbox_storages(
        &self,
        storages: &[StorageRequest],
    ) -> Result<(), AttachError> {
        if storages.is_empty() {
            return Ok(());
        }
        let span = tracing::info_span!("add_storages", count = storages.len());
        self.storages
            .add(&StorageContext::sandbox(), storages, SANDBOX_OWNER)
            .instrument(span)
            .await?;
        Ok(())
    }

    /// Gives back the sandbox's own storages (a failed CreateSandbox).
    pub fn release_sandbox_storages(&self) -> Result<(), AttachError> {
        Ok(self.storages.release(SANDBOX_OWNER)?)
    }

    /// Unmounts every storage left (DestroySandbox), shared ones included.
    pub fn release_all_storages(&self) -> Result<(), AttachError> {
        Ok(self.storages.release_all()?)
    }
}
