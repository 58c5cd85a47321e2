//! The task that feeds the kernel's uevents into the [`DeviceWatcher`].

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::uevent::Uevent;
use super::watcher::DeviceWatcher;
use crate::host::{Sysfs, UeventSource};

/// Reads uevents until the source fails for good: parses each, drops malformed ones with a
/// warning, onlines hot-added memory blocks, and hands the rest to `watcher`.
pub async fn watch_uevents(
    source: Arc<dyn UeventSource>,
    watcher: Arc<DeviceWatcher>,
    sysfs: Arc<dyn Sysfs>,
) -> io::Error {
    loop {
        let raw = match source.recv().await {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(error = %e, "uevent source failed");
                return e;
            }
        };
        let event = match Uevent::parse(&raw) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, len = raw.len(), "dropping malformed uevent");
                continue;
            }
        };
        if event.is_add() && event.subsystem == "memory" {
            online_memory_block(&*sysfs, &event);
        }
        watcher.handle(event);
    }
}

/// Hot-added memory arrives offline; the agent onlines each block as it appears (Kata does
/// the same). Failures are logged: the block stays offline, nothing else is affected.
fn online_memory_block(sysfs: &dyn Sysfs, event: &Uevent) {
    let online = format!("/sys{}/online", event.devpath);
    if !online.starts_with("/sys/devices/system/memory/") {
        return;
    }
    match sysfs.read_string(Path::new(&online)) {
        Ok(state) if state == "1" => {}
        Ok(_) => {
            if let Err(e) = sysfs.write(Path::new(&online), b"1") {
                tracing::warn!(error = %e, block = %event.devpath, "cannot online memory block");
            } else {
                tracing::info!(block = %event.devpath, "memory block onlined");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, block = %event.devpath, "cannot read memory block state")
        }
    }
}
