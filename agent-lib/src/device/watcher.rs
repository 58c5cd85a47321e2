//! The device watcher: every device the kernel announced so far, and the requests waiting for
//! one. A wait first looks at what already arrived and, under the same lock, registers itself,
//! so no event can slip between the two.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

use super::uevent::Uevent;

/// Picks the uevent of one device.
pub trait UeventMatcher: Send + Sync + fmt::Display {
    /// Whether `event` announces the device.
    fn matches(&self, event: &Uevent) -> bool;
}

/// A wait that did not end with the device.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The device did not appear in time.
    #[error("timeout after {timeout:?} waiting for {device}")]
    Timeout {
        /// What was waited for.
        device: String,
        /// How long.
        timeout: Duration,
    },
    /// The watcher stopped (the agent is shutting down).
    #[error("device watcher stopped while waiting for {0}")]
    Stopped(String),
}

struct Waiter {
    id: u64,
    matcher: Box<dyn UeventMatcher>,
    tx: oneshot::Sender<Uevent>,
}

#[derive(Default)]
struct State {
    /// Devices present, by devpath (from `add` until `remove`).
    devices: BTreeMap<String, Uevent>,
    waiters: Vec<Waiter>,
    next_id: u64,
}

/// Devices seen so far and pending waits. Owns its state behind its own lock.
#[derive(Default)]
pub struct DeviceWatcher {
    state: Mutex<State>,
}

impl fmt::Debug for DeviceWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("DeviceWatcher")
            .field("devices", &state.devices.len())
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

impl DeviceWatcher {
    /// An empty watcher.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one event: `add` makes the device known and wakes its waiters, `remove` forgets
    /// it; other actions change nothing.
    pub fn handle(&self, event: Uevent) {
        let mut state = self.lock();
        match event.action.as_str() {
            "add" => {
                let mut i = 0;
                while i < state.waiters.len() {
                    if state.waiters[i].matcher.matches(&event) {
                        let waiter = state.waiters.swap_remove(i);
                        // The waiter may have timed out just now; nothing to do then.
                        let _ = waiter.tx.send(event.clone());
                    } else {
                        i += 1;
                    }
                }
                state.devices.insert(event.devpath.clone(), event);
            }
            "remove" => {
                state.devices.remove(&event.devpath);
            }
            _ => {}
        }
    }

    /// The first known device that `matcher` picks, in devpath order.
    pub fn find(&self, matcher: &dyn UeventMatcher) -> Option<Uevent> {
        self.lock()
            .devices
            .values()
            .find(|e| matcher.matches(e))
            .cloned()
    }

    /// Waits up to `timeout` for the device `matcher` picks; returns at once if it is known.
    pub async fn wait_for(
        &self,
        matcher: Box<dyn UeventMatcher>,
        timeout: Duration,
    ) -> Result<Uevent, WaitError> {
        let device = matcher.to_string();
        let (id, rx) = {
            let mut state = self.lock();
            if let Some(found) = state.devices.values().find(|e| matcher.matches(e)) {
                return Ok(found.clone());
            }
            let (tx, rx) = oneshot::channel();
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.push(Waiter { id, matcher, tx });
            (id, rx)
        };
        tracing::debug!(%device, ?timeout, "waiting for device");
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(event)) => Ok(event),
            Ok(Err(_)) => Err(WaitError::Stopped(device)),
            Err(_) => {
                self.lock().waiters.retain(|w| w.id != id);
                Err(WaitError::Timeout { device, timeout })
            }
        }
    }

    /// How many waits are pending.
    pub fn pending(&self) -> usize {
        self.lock().waiters.len()
    }

    /// How many devices are known.
    pub fn known(&self) -> usize {
        self.lock().devices.len()
    }
}
