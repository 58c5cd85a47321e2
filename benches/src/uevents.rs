//! The uevent cost fixture: a device watcher that knows 1,000 unrelated disks and has a request
//! waiting, with the agent's virtio-blk PCI matcher, for a disk that never comes.

use std::sync::Arc;
use std::time::Duration;

use agent_fakes::uevent_datagram;
use kata_agent::device::{DeviceWatcher, Uevent, VirtioBlkPciMatcher};
use tokio::task::JoinHandle;

/// The PCI device the pending wait is for: nothing is ever plugged there.
const AWAITED_PCI: &str = "/devices/pci0000:00/0000:00:1f.0/0000:09:00.0";

/// The raw `add` datagram of virtio-blk disk `vd<n>` on PCI slot 02.
pub fn block_add(n: usize) -> Vec<u8> {
    let devpath = format!("/devices/pci0000:00/0000:00:02.0/0000:01:00.0/virtio{n}/block/vd{n}");
    uevent_datagram(
        "add",
        &devpath,
        &[
            ("SUBSYSTEM", "block"),
            ("MAJOR", "254"),
            ("MINOR", &n.to_string()),
            ("DEVNAME", &format!("vd{n}")),
            ("DEVTYPE", "disk"),
        ],
        n as u64,
    )
}

/// A watcher with 1,000 known devices and one pending wait.
#[derive(Debug)]
pub struct Watching {
    /// The watcher to feed events to.
    pub watcher: Arc<DeviceWatcher>,
    wait: JoinHandle<()>,
}

impl Watching {
    /// Fills the watcher and registers the wait; call inside a tokio runtime.
    pub async fn start() -> Watching {
        let watcher = Arc::new(DeviceWatcher::new());
        for n in 0..1000 {
            if let Ok(event) = Uevent::parse(&block_add(n)) {
                watcher.handle(event);
            }
        }
        let waiting = watcher.clone();
        let wait = tokio::spawn(async move {
            let matcher = VirtioBlkPciMatcher::new(AWAITED_PCI);
            let _ = waiting
                .wait_for(Box::new(matcher), Duration::from_secs(86400))
                .await;
        });
        while watcher.pending() == 0 {
            tokio::task::yield_now().await;
        }
        Watching { watcher, wait }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.wait.abort();
    }
}
