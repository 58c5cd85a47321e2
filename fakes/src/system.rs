//! [`FakeSystem`]: hostname, swap, filesystem usage and clock, in memory.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kata_agent::host::{FsStats, NamespaceKind, System};
use nix::errno::Errno;

use crate::FakeMounter;
use crate::faults::{Faults, Op, errno, lock};

#[derive(Debug, Default)]
struct State {
    hostname: String,
    swaps: Vec<PathBuf>,
    filesystems: BTreeMap<PathBuf, FsStats>,
    time: Option<(i64, i64)>,
    seeded: Vec<Vec<u8>>,
    pid: u32,
    pinned: Vec<(NamespaceKind, Option<String>, PathBuf)>,
}

/// The guest's hostname, active swap areas, filesystem usage (set by the test per mount point),
/// the last clock setting, the entropy fed to the kernel and the agent's pid (1 by default: the
/// agent is the guest's init).
///
/// [`System::pin_namespace`] records the namespace and, when the fake is linked to a
/// [`FakeMounter`] ([`FakeSystem::with_mounter`], as a [`crate::FakeHost`] does), adds an `nsfs`
/// bind mount on the target, so unmounting it releases the pin and a forgotten pin shows up as a
/// leftover mount.
#[derive(Debug)]
pub struct FakeSystem {
    faults: Faults,
    state: Mutex<State>,
    mounter: Option<Arc<FakeMounter>>,
}

impl FakeSystem {
    /// Hostname `localhost`, no swap, no filesystems, pid 1.
    pub fn new(faults: Faults) -> Self {
        let state = State {
            hostname: "localhost".into(),
            pid: 1,
            ..State::default()
        };
        FakeSystem {
            faults,
            state: Mutex::new(state),
            mounter: None,
        }
    }

    /// Like [`FakeSystem::new`], with pinned namespaces mounted in `mounter`'s table.
    pub fn with_mounter(faults: Faults, mounter: Arc<FakeMounter>) -> Self {
        FakeSystem {
            mounter: Some(mounter),
            ..FakeSystem::new(faults)
        }
    }

    /// Every namespace pinned so far: kind, hostname (UTS) and target, in order.
    pub fn pinned(&self) -> Vec<(NamespaceKind, Option<String>, PathBuf)> {
        lock(&self.state).pinned.clone()
    }

    /// The current hostname.
    pub fn hostname(&self) -> String {
        lock(&self.state).hostname.clone()
    }

    /// The active swap areas, in swapon order.
    pub fn swaps(&self) -> Vec<PathBuf> {
        lock(&self.state).swaps.clone()
    }

    /// Declares the usage of the filesystem mounted at `mount_point`; statfs of any path under
    /// it answers this.
    pub fn set_filesystem(&self, mount_point: impl Into<PathBuf>, stats: FsStats) {
        lock(&self.state)
            .filesystems
            .insert(mount_point.into(), stats);
    }

    /// Every [`System::reseed_random`] data, in order.
    pub fn seeded(&self) -> Vec<Vec<u8>> {
        lock(&self.state).seeded.clone()
    }

    /// Sets the pid [`System::process_id`] reports.
    pub fn set_pid(&self, pid: u32) {
        lock(&self.state).pid = pid;
    }

    /// The last time set, `(secs, usecs)`.
    pub fn time(&self) -> Option<(i64, i64)> {
        lock(&self.state).time
    }
}

impl System for FakeSystem {
    fn set_hostname(&self, name: &str) -> io::Result<()> {
        self.faults.check(Op::SetHostname)?;
        if name.is_empty() || name.len() > 64 {
            return Err(errno(Errno::EINVAL));
        }
        lock(&self.state).hostname = name.to_owned();
        Ok(())
    }

    fn swapon(&self, path: &Path) -> io::Result<()> {
        self.faults.check(Op::Swapon)?;
        let mut state = lock(&self.state);
        if state.swaps.iter().any(|p| p == path) {
            return Err(errno(Errno::EBUSY));
        }
        state.swaps.push(path.to_owned());
        Ok(())
    }

    fn statfs(&self, path: &Path) -> io::Result<FsStats> {
        self.faults.check(Op::Statfs)?;
        let state = lock(&self.state);
        state
            .filesystems
            .iter()
            .filter(|(mount, _)| path.starts_with(mount))
            .max_by_key(|(mount, _)| mount.components().count())
            .map(|(_, stats)| *stats)
            .ok_or_else(|| errno(Errno::ENOENT))
    }

    fn set_time(&self, secs: i64, usecs: i64) -> io::Result<()> {
        self.faults.check(Op::SetTime)?;
        if !(0..1_000_000).contains(&usecs) {
            return Err(errno(Errno::EINVAL));
        }
        lock(&self.state).time = Some((secs, usecs));
        Ok(())
    }

    fn reseed_random(&self, data: &[u8]) -> io::Result<()> {
        self.faults.check(Op::Reseed)?;
        lock(&self.state).seeded.push(data.to_vec());
        Ok(())
    }

    fn process_id(&self) -> u32 {
        lock(&self.state).pid
    }

    fn pin_namespace(
        &self,
        kind: NamespaceKind,
        hostname: Option<&str>,
        target: &Path,
    ) -> io::Result<()> {
        self.faults.check(Op::PinNamespace)?;
        if hostname.is_some_and(|h| h.is_empty() || h.len() > 64) {
            return Err(errno(Errno::EINVAL));
        }
        if let Some(mounter) = &self.mounter {
            mounter.insert("nsfs", target, "nsfs");
        }
        lock(&self.state)
            .pinned
            .push((kind, hostname.map(str::to_owned), target.to_owned()));
        Ok(())
    }
}
