//! The storage-subsystem view of a [`Pod`], for the storage tests; and storages on the real
//! kernel.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_fakes::FakeHost;
use kata_agent::config::Config;
use kata_agent::device::{DeviceContext, DeviceWatcher};
use kata_agent::host::Host;
use kata_agent::linux::{LinuxMounter, LinuxSysfs};
use kata_agent::storage::{DriverRegistry, MountRoots, StorageContext, Storages};

use crate::pod::Pod;

/// A [`Pod`] seen through its agent's storages (not started: no uevent loop), with `/run` and
/// the hugepage pools present.
#[derive(Debug)]
pub struct Bench {
    pod: Pod,
    /// The agent's storages.
    pub storages: Arc<Storages>,
}

impl Deref for Bench {
    type Target = Pod;

    fn deref(&self) -> &Pod {
        &self.pod
    }
}

impl Pod {
    /// A pod seen as a storage bench (hotplug timeout 3 s), its fakes baselined after set-up.
    pub async fn storages() -> Bench {
        let config = Config {
            hotplug_timeout: Duration::from_secs(3),
            ..Config::default()
        };
        let pod = Pod::with_config(config).await;
        let fake = &pod.fake;
        fake.sysfs.mkdir_p("/run").unwrap();
        fake.sysfs
            .write_file(
                "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                "0\n",
            )
            .unwrap();
        fake.baseline();
        let storages = pod.agent.storages().clone();
        Bench { pod, storages }
    }
}

impl Bench {
    /// The fakes hold nothing the storages made: no mount, no table entry.
    pub fn assert_clean(&self, what: &str) {
        let left = self.fake.leftovers();
        assert!(left.is_empty(), "{what}: {left}");
        assert!(
            self.storages.list().is_empty(),
            "{what}: {:?}",
            self.storages.list()
        );
    }

    /// Whether the fakes hold a node at `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.fake.sysfs.kind(Path::new(path)).is_some()
            || self.fake.sysfs.meta(Path::new(path)).is_some()
    }
}

/// Storages on the real kernel: the fakes with the real mounter and a real sysfs rooted at `/`,
/// hotplug waits on `watcher`, mounts confined below `base` (not /run/kata-containers).
pub fn real_storages(
    base: &Path,
    watcher: Arc<DeviceWatcher>,
    hotplug_timeout: Duration,
) -> Storages {
    let sysfs = Arc::new(LinuxSysfs::new("/"));
    let host = Host {
        mounter: Arc::new(LinuxMounter::new()),
        sysfs: sysfs.clone(),
        agent_files: sysfs.clone(),
        ..FakeHost::new().host()
    };
    let devices = DeviceContext {
        watcher,
        sysfs,
        hotplug_timeout,
    };
    Storages::new(host, devices, DriverRegistry::standard())
        .with_mount_roots(MountRoots::new([base]))
}

/// The storage context of container `id`.
pub fn ctr(id: &str) -> StorageContext {
    StorageContext::container(id)
}
