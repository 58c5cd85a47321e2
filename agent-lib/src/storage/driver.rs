//! The [`StorageDriver`] trait and the [`DriverRegistry`] keyed by Kata's driver strings.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::error::StorageError;
use super::request::StorageRequest;
use super::undo::Journal;
use crate::device::DeviceContext;
use crate::host::Host;

/// What a driver works with.
#[derive(Debug)]
pub struct DriverContext<'a> {
    /// The OS.
    pub host: &'a Host,
    /// Device lookups for block drivers.
    pub devices: &'a DeviceContext,
    /// The container the storage is for; `None` for sandbox storages.
    pub container_id: Option<&'a str>,
}

/// Sets up one kind of storage.
#[async_trait]
pub trait StorageDriver: Send + Sync + fmt::Debug {
    /// Kata's driver string (`blk`, `virtio-fs`...).
    fn name(&self) -> &'static str;

    /// Storages that must exist before `request` (the watchable-bind tmpfs root); they are
    /// added through the refcount table under the same owner, before `request`. Most drivers
    /// need none.
    fn prerequisites(
        &self,
        _request: &StorageRequest,
    ) -> Result<Vec<StorageRequest>, StorageError> {
        Ok(Vec::new())
    }

    /// Sets the storage up, recording in `undo` every step as it succeeds: on error the caller
    /// undoes them, so a driver simply returns its error.
    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError>;
}

/// Drivers by Kata's driver string. Built by the agent; no global state.
#[derive(Clone, Debug, Default)]
pub struct DriverRegistry {
    drivers: BTreeMap<&'static str, Arc<dyn StorageDriver>>,
}

impl DriverRegistry {
    /// No drivers.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every driver of this agent: Kata's (`blk`, `mmioblk`, `scsi`, `nvdimm`, `virtio-fs`,
    /// `ephemeral`, `local`, `overlayfs`, `watchable-bind`), the Go agent's `9p`, and `bind`.
    pub fn standard() -> Self {
        use super::drivers::*;
        let mut registry = Self::empty();
        let drivers: [Arc<dyn StorageDriver>; 11] = [
            Arc::new(BlockDriver::BLK),
            Arc::new(BlockDriver::MMIOBLK),
            Arc::new(BlockDriver::SCSI),
            Arc::new(BlockDriver::NVDIMM),
            Arc::new(VirtioFs),
            Arc::new(NineP),
            Arc::new(Ephemeral),
            Arc::new(Local),
            Arc::new(Overlayfs),
            Arc::new(Bind),
            Arc::new(WatchableBind),
        ];
        for driver in drivers {
            registry.register(driver);
        }
        registry
    }

    /// Adds `driver`, replacing any driver of the same name.
    pub fn register(&mut self, driver: Arc<dyn StorageDriver>) {
        self.drivers.insert(driver.name(), driver);
    }

    /// The driver for `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn StorageDriver>, StorageError> {
        self.drivers
            .get(name)
            .ok_or_else(|| StorageError::UnknownDriver(name.to_owned()))
    }

    /// The driver names, sorted (GetGuestDetails' `storage_handlers`).
    pub fn names(&self) -> Vec<&'static str> {
        self.drivers.keys().copied().collect()
    }
}
