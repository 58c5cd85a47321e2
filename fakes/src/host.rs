//! `FakeHost`: every fake behind one [`Faults`], as a [`Host`], with a leak check.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use kata_agent::host::{CgroupVersion, Host};

use crate::faults::{Faults, lock};
use crate::{
    FakeCgroups, FakeFileTree, FakeLauncher, FakeMount, FakeMounter, FakeNetlink, FakeSharedMount,
    FakeSysfs, FakeSystem, FakeTransport, FakeUevents, LaunchRecord,
};

/// What existed when the baseline was taken.
#[derive(Debug, Default)]
struct Baseline {
    mounts: BTreeSet<u64>,
    cgroups: BTreeSet<String>,
    pids: BTreeSet<i32>,
}

/// What exists now and did not at the baseline: what a scenario leaked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Leftovers {
    /// Mounts made since the baseline and still mounted, in mount order.
    pub mounts: Vec<FakeMount>,
    /// Cgroups created since the baseline and not destroyed, sorted.
    pub cgroups: Vec<String>,
    /// Processes launched since the baseline and still running, by pid.
    pub processes: Vec<LaunchRecord>,
    /// Mounts shared into containers since the baseline whose namespace still exists.
    pub shared_mounts: Vec<FakeSharedMount>,
}

impl Leftovers {
    /// Whether nothing was left behind.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
            && self.cgroups.is_empty()
            && self.processes.is_empty()
            && self.shared_mounts.is_empty()
    }
}

impl fmt::Display for Leftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "no leftovers");
        }
        write!(
            f,
            "leftovers: {} mount(s), {} cgroup(s), {} process(es), {} shared mount(s)",
            self.mounts.len(),
            self.cgroups.len(),
            self.processes.len(),
            self.shared_mounts.len()
        )?;
        for m in &self.mounts {
            let e = m.entry();
            write!(
                f,
                "\n  mount: {} on {} type {} ({})",
                e.source,
                e.target.display(),
                e.fstype,
                e.options
            )?;
        }
        for m in &self.shared_mounts {
            let s = &m.share;
            write!(
                f,
                "\n  shared mount: pid {} {} on pid {} {}",
                s.src_pid,
                s.src_path.display(),
                s.dst_pid,
                s.dst_path.display()
            )?;
        }
        for cgroup in &self.cgroups {
            write!(f, "\n  cgroup: {cgroup}")?;
        }
        for process in &self.processes {
            write!(f, "\n  process: {process}")?;
        }
        Ok(())
    }
}

/// Every fake, sharing one [`Faults`], plus a baseline for [`FakeHost::leftovers`].
///
/// The fields are the typed fakes a test or fake VMM drives; [`FakeHost::host`] hands the same
/// objects to the agent as trait objects. The launcher is wired to the cgroups so an exited
/// process leaves its cgroup, as in the kernel.
#[derive(Debug)]
pub struct FakeHost {
    /// Fault injection and call counts for every fake below.
    pub faults: Faults,
    /// The mount table.
    pub mounter: Arc<FakeMounter>,
    /// Links, addresses, routes and neighbours.
    pub netlink: Arc<FakeNetlink>,
    /// The uevent stream.
    pub uevents: Arc<FakeUevents>,
    /// The cgroup tree.
    pub cgroups: Arc<FakeCgroups>,
    /// Listeners and in-memory connections.
    pub transport: Arc<FakeTransport>,
    /// Scripted processes.
    pub launcher: Arc<FakeLauncher>,
    /// /sys, /dev and /proc.
    pub sysfs: Arc<FakeSysfs>,
    /// Hostname, swap, filesystem usage, clock, entropy.
    pub system: Arc<FakeSystem>,
    /// Files beneath base directories, on the `sysfs` tree.
    pub files: Arc<FakeFileTree>,
    baseline: Mutex<Baseline>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// Fresh fakes on cgroup v2, with the baseline taken now.
    pub fn new() -> Self {
        Self::with_cgroup_version(CgroupVersion::V2)
    }

    /// Fresh fakes on the given cgroup hierarchy, with the baseline taken now.
    pub fn with_cgroup_version(version: CgroupVersion) -> Self {
        let faults = Faults::new();
        let cgroups = Arc::new(FakeCgroups::new(version, faults.clone()));
        let mounter = Arc::new(FakeMounter::new(faults.clone()));
        let launcher = Arc::new(FakeLauncher::with_mounter(faults.clone(), mounter.clone()));
        let exited = Arc::clone(&cgroups);
        launcher.on_exit(move |pid, _| exited.process_exited(pid));
        let namespaces = Arc::clone(&mounter);
        launcher.on_exit(move |pid, _| namespaces.namespace_gone(pid));
        let system = Arc::new(FakeSystem::with_mounter(faults.clone(), mounter.clone()));
        let sysfs = Arc::new(FakeSysfs::new(faults.clone()));
        let files = Arc::new(FakeFileTree::new(faults.clone(), sysfs.clone()));
        let host = FakeHost {
            mounter,
            netlink: Arc::new(FakeNetlink::new(faults.clone())),
            uevents: Arc::new(FakeUevents::new(faults.clone())),
            cgroups,
            transport: Arc::new(FakeTransport::new(faults.clone())),
            launcher,
            sysfs,
            system,
            files,
            faults,
            baseline: Mutex::default(),
        };
        host.baseline();
        host
    }

    /// The fakes as the agent takes them.
    pub fn host(&self) -> Host {
        Host {
            mounter: self.mounter.clone(),
            netlink: self.netlink.clone(),
            uevents: self.uevents.clone(),
            cgroups: self.cgroups.clone(),
            transport: self.transport.clone(),
            launcher: self.launcher.clone(),
            sysfs: self.sysfs.clone(),
            agent_files: self.sysfs.clone(),
            system: self.system.clone(),
            files: self.files.clone(),
        }
    }

    /// Takes the baseline anew: what exists now is not a leftover.
    pub fn baseline(&self) {
        *lock(&self.baseline) = Baseline {
            mounts: self
                .mounter
                .table()
                .iter()
                .map(|m| m.id)
                .chain(self.mounter.shared().iter().map(|m| m.id))
                .collect(),
            cgroups: self.cgroups.paths().into_iter().collect(),
            pids: self.launcher.live().into_iter().collect(),
        };
    }

    /// Mounts, cgroups and processes that exist now and did not at the baseline.
    pub fn leftovers(&self) -> Leftovers {
        let baseline = lock(&self.baseline);
        Leftovers {
            mounts: self
                .mounter
                .table()
                .into_iter()
                .filter(|m| !baseline.mounts.contains(&m.id))
                .collect(),
            cgroups: self
                .cgroups
                .paths()
                .into_iter()
                .filter(|p| !baseline.cgroups.contains(p))
                .collect(),
            processes: self
                .launcher
                .live()
                .into_iter()
                .filter(|pid| !baseline.pids.contains(pid))
                .filter_map(|pid| self.launcher.record(pid))
                .collect(),
            shared_mounts: self
                .mounter
                .shared()
                .into_iter()
                .filter(|m| !baseline.mounts.contains(&m.id))
                .collect(),
        }
    }
}
