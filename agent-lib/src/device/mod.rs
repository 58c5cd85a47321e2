//! Devices: the kernel's uevents, the watcher that waits for hot-plugged devices, and (as it
//! grows) PCI path resolution and the device handlers of CreateContainer.

mod uevent;
mod watch_loop;
mod watcher;

pub use uevent::{Uevent, UeventError};
pub use watch_loop::watch_uevents;
pub use watcher::{DeviceWatcher, UeventMatcher, WaitError};
