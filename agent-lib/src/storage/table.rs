//! [`Storages`]: the refcount table of the sandbox's storages, keyed by mount point, and the
//! entry points CreateSandbox, CreateContainer, RemoveContainer and DestroySandbox call.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use super::confine::MountRoots;
use super::driver::{DriverContext, DriverRegistry};
use super::error::StorageError;
use super::request::StorageRequest;
use super::undo::Journal;
use crate::device::DeviceContext;
use crate::host::Host;

/// One storage in use.
#[derive(Debug)]
struct Entry {
    /// Creation order: releases go newest first (a storage may live inside an older one).
    seq: u64,
    driver: String,
    /// One owner per use (an owner may use a mount point more than once).
    users: Vec<String>,
    shared: bool,
    undo: Journal,
}

#[derive(Debug)]
enum Slot {
    /// Being set up by a first user; later users wait for the outcome.
    Pending,
    Ready(Entry),
}

#[derive(Debug, Default)]
struct Table {
    slots: BTreeMap<PathBuf, Slot>,
    next_seq: u64,
}

/// What one storage looks like in the table (for tests and diagnostics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageInfo {
    /// The mount point.
    pub mount_point: PathBuf,
    /// The driver that set it up.
    pub driver: String,
    /// Its users, one entry per use.
    pub users: Vec<String>,
    /// Whether it is kept until the sandbox goes.
    pub shared: bool,
}

/// The sandbox's storages: a driver registry and a refcount table keyed by mount point.
///
/// A second user of a mount point only bumps its count; the release of the last user undoes
/// what the driver did (unmount, remove the mount point, stop pollers). `shared` storages stay
/// until [`Storages::release_all`]. The table lock is never held across an OS call or an await.
pub struct Storages {
    host: Host,
    devices: DeviceContext,
    registry: DriverRegistry,
    roots: MountRoots,
    table: Mutex<Table>,
    changed: Notify,
}

impl fmt::Debug for Storages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storages")
            .field("registry", &self.registry.names())
            .field("storages", &self.lock().slots.len())
            .finish_non_exhaustive()
    }
}

/// Context of one [`Storages::add`] call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageContext {
    /// The container the storages are for; `None` for CreateSandbox's storages. The overlayfs
    /// `overlay-rw` option needs it.
    pub container_id: Option<String>,
}

impl StorageContext {
    /// For the sandbox's own storages.
    pub fn sandbox() -> Self {
        Self::default()
    }

    /// For container `id`.
    pub fn container(id: &str) -> Self {
        StorageContext {
            container_id: Some(id.to_owned()),
        }
    }
}

/// One use taken by an `add` call, for its rollback.
struct Taken {
    mount_point: PathBuf,
    created: bool,
}

impl Storages {
    /// Storages on `host`, finding block devices through `devices`, with `registry`'s drivers,
    /// mounted only below [`KATA_GUEST_DIR`](super::KATA_GUEST_DIR).
    pub fn new(host: Host, devices: DeviceContext, registry: DriverRegistry) -> Self {
        Storages {
            host,
            devices,
            registry,
            roots: MountRoots::default(),
            table: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// The same storages confined below `roots` instead.
    pub fn with_mount_roots(mut self, roots: MountRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Where storages may be mounted.
    pub fn mount_roots(&self) -> &MountRoots {
        &self.roots
    }

    /// The drivers.
    pub fn registry(&self) -> &DriverRegistry {
        &self.registry
    }

    /// The OS the storages live on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Device lookups (block devices, swap).
    pub fn devices(&self) -> &DeviceContext {
        &self.devices
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets up `requests` for `owner` (a container id, or the sandbox), in order, and returns
    /// their mount points in the same order.
    ///
    /// All or nothing: on error, every use this call took is given back and everything it set
    /// up is undone, and the error names the storage and the failed step.
    pub async fn add(
        &self,
        ctx: &StorageContext,
        requests: &[StorageRequest],
        owner: &str,
    ) -> Result<Vec<PathBuf>, StorageError> {
        // Check everything before touching anything; mount points are confined and normalised.
        let mut plan = Vec::new();
        let mut mount_points = Vec::new();
        for request in requests {
            let request = self.confined(request)?;
            let driver = self.registry.get(&request.driver)?;
            for pre in driver.prerequisites(&request)? {
                let pre = self.confined(&pre)?;
                self.registry.get(&pre.driver)?;
                plan.push(pre);
            }
            mount_points.push(request.mount_point.clone());
            plan.push(request);
        }
        let mut taken: Vec<Taken> = Vec::new();
        for request in &plan {
            match self.acquire(ctx, request, owner).await {
                Ok(created) => taken.push(Taken {
                    mount_point: request.mount_point.clone(),
                    created,
                }),
                Err(e) => {
                    tracing::warn!(mount_point = %request.mount_point.display(),
                        driver = %request.driver, error = %e, "storage failed; rolling back");
                    for t in taken.into_iter().rev() {
                        self.give_back(&t, owner);
                    }
                    return Err(e);
                }
            }
        }
        Ok(mount_points)
    }

    /// `request` checked, with its mount point confined and normalised.
    fn confined(&self, request: &StorageRequest) -> Result<StorageRequest, StorageError> {
        request.validate()?;
        let mut request = request.clone();
        request.mount_point = self.roots.confine(&request.mount_point)?;
        Ok(request)
    }

    /// Takes one use of `request`'s mount point, setting it up when it is new. Returns whether
    /// this call set it up.
    async fn acquire(
        &self,
        ctx: &StorageContext,
        request: &StorageRequest,
        owner: &str,
    ) -> Result<bool, StorageError> {
        let key = request.mount_point.clone();
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut table = self.lock();
                match table.slots.get_mut(&key) {
                    Some(Slot::Ready(entry)) => {
                        if entry.driver != request.driver {
                            tracing::warn!(mount_point = %key.display(), existing = %entry.driver,
                                requested = %request.driver, "mount point reused by another driver");
                        }
                        entry.users.push(owner.to_owned());
                        entry.shared |= request.shared;
                        tracing::debug!(mount_point = %key.display(), users = entry.users.len(),
                            "storage already set up");
                        return Ok(false);
                    }
                    Some(Slot::Pending) => {}
                    None => {
                        table.slots.insert(key.clone(), Slot::Pending);
                        break;
                    }
                }
            }
            notified.await;
        }
        let mut pending = PendingGuard {
            storages: self,
            key: key.clone(),
            undo: Journal::new(),
            done: false,
        };
        let driver = self.registry.get(&request.driver)?;
        let dctx = DriverContext {
            host: &self.host,
            devices: &self.devices,
            container_id: ctx.container_id.as_deref(),
        };
        driver.provision(&dctx, request, &mut pending.undo).await?;
        let undo = std::mem::take(&mut pending.undo);
        pending.done = true;
        let mut table = self.lock();
        let seq = table.next_seq;
        table.next_seq += 1;
        table.slots.insert(
            key.clone(),
            Slot::Ready(Entry {
                seq,
                driver: request.driver.clone(),
                users: vec![owner.to_owned()],
                shared: request.shared,
                undo,
            }),
        );
        drop(table);
        tracing::info!(mount_point = %key.display(), driver = %request.driver, owner,
            "storage set up");
        Ok(true)
    }

    /// Gives back one use taken by a failed `add`; a storage that call set up is undone when
    /// nobody else took it meanwhile, shared or not.
    fn give_back(&self, taken: &Taken, owner: &str) {
        let mut table = self.lock();
        let Some(Slot::Ready(entry)) = table.slots.get_mut(&taken.mount_point) else {
            return;
        };
        if let Some(pos) = entry.users.iter().rposition(|u| u == owner) {
            entry.users.remove(pos);
        }
        if !entry.users.is_empty() || (entry.shared && !taken.created) {
            return;
        }
        let Some(Slot::Ready(entry)) = table.slots.remove(&taken.mount_point) else {
            return;
        };
        drop(table);
        entry.undo.rollback(&self.host);
    }

    /// Gives back every use of `owner` (RemoveContainer). Storages left without users are undone,
    /// newest first, except shared ones. Every storage is tried; the error lists those that
    /// could not be fully undone.
    pub fn release(&self, owner: &str) -> Result<(), StorageError> {
        let mut doomed = Vec::new();
        {
            let mut table = self.lock();
            let mut emptied = Vec::new();
            for (key, slot) in table.slots.iter_mut() {
                if let Slot::Ready(entry) = slot {
                    let before = entry.users.len();
                    entry.users.retain(|u| u != owner);
                    if before != entry.users.len() && entry.users.is_empty() && !entry.shared {
                        emptied.push(key.clone());
                    }
                }
            }
            for key in emptied {
                if let Some(Slot::Ready(entry)) = table.slots.remove(&key) {
                    doomed.push((key, entry));
                }
            }
        }
        self.undo_all(doomed)
    }

    /// Undoes every storage, shared ones included (DestroySandbox), newest first.
    pub fn release_all(&self) -> Result<(), StorageError> {
        let doomed: Vec<(PathBuf, Entry)> = {
            let mut table = self.lock();
            let keys: Vec<PathBuf> = table
                .slots
                .iter()
                .filter(|(_, s)| matches!(s, Slot::Ready(_)))
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| match table.slots.remove(&k) {
                    Some(Slot::Ready(entry)) => Some((k, entry)),
                    _ => None,
                })
                .collect()
        };
        self.undo_all(doomed)
    }

    fn undo_all(&self, mut doomed: Vec<(PathBuf, Entry)>) -> Result<(), StorageError> {
        doomed.sort_by_key(|(_, e)| std::cmp::Reverse(e.seq));
        let mut failures = Vec::new();
        for (key, entry) in doomed {
            tracing::info!(mount_point = %key.display(), driver = %entry.driver, "releasing storage");
            if let Err(e) = entry.undo.release(&self.host) {
                failures.push((key, e.to_string()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(StorageError::Release(failures))
        }
    }

    /// The storages set up, by mount point.
    pub fn list(&self) -> Vec<StorageInfo> {
        self.lock()
            .slots
            .iter()
            .filter_map(|(key, slot)| match slot {
                Slot::Ready(e) => Some(StorageInfo {
                    mount_point: key.clone(),
                    driver: e.driver.clone(),
                    users: e.users.clone(),
                    shared: e.shared,
                }),
                Slot::Pending => None,
            })
            .collect()
    }

    /// How many uses `mount_point` has (0 when not set up).
    pub fn refcount(&self, mount_point: &Path) -> usize {
        match self.lock().slots.get(mount_point) {
            Some(Slot::Ready(e)) => e.users.len(),
            _ => 0,
        }
    }
}

/// A mount point being set up. If the setup ends without success (error or the future being
/// dropped), what was done is undone and the slot freed for waiting users.
struct PendingGuard<'a> {
    storages: &'a Storages,
    key: PathBuf,
    undo: Journal,
    /// The storage made it into the table.
    done: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let storages = self.storages;
        if !self.done {
            std::mem::take(&mut self.undo).rollback(&storages.host);
            let mut table = storages.lock();
            if matches!(table.slots.get(&self.key), Some(Slot::Pending)) {
                table.slots.remove(&self.key);
            }
        }
        storages.changed.notify_waiters();
    }
}
