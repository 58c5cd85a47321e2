//! Fault injection shared by every fake: make the n-th call of an operation fail with an errno,
//! and count the calls so a test can enumerate every fault point of a scenario.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

/// One fallible method of a host trait. Provided trait methods (`Mounter::bind`,
/// `Sysfs::exists`...) go through the required ones and count as those.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `Mounter::mount`.
    Mount,
    /// `Mounter::umount`.
    Umount,
    /// `Mounter::mounts`.
    Mounts,
    /// `Netlink::links`.
    Links,
    /// `Netlink::set_link`.
    SetLink,
    /// `Netlink::addresses`.
    Addresses,
    /// `Netlink::add_address`.
    AddAddress,
    /// `Netlink::del_address`.
    DelAddress,
    /// `Netlink::routes`.
    Routes,
    /// `Netlink::add_route`.
    AddRoute,
    /// `Netlink::del_route`.
    DelRoute,
    /// `Netlink::add_neighbour`.
    AddNeighbour,
    /// `UeventSource::recv`.
    UeventRecv,
    /// `Cgroups::create`.
    CgroupCreate,
    /// `Cgroups::add_process`.
    CgroupAddProcess,
    /// `Cgroups::set`.
    CgroupSet,
    /// `Cgroups::stats`.
    CgroupStats,
    /// `Cgroups::freeze`.
    CgroupFreeze,
    /// `Cgroups::pids`.
    CgroupPids,
    /// `Cgroups::destroy`.
    CgroupDestroy,
    /// `Transport::listen`.
    Listen,
    /// `Launcher::launch`.
    Launch,
    /// `Launcher::signal`.
    Signal,
    /// `Sysfs::read`.
    SysfsRead,
    /// `Sysfs::write`.
    SysfsWrite,
    /// `Sysfs::read_dir`.
    SysfsReadDir,
    /// `Sysfs::read_link`.
    SysfsReadLink,
    /// `Sysfs::stat`.
    SysfsStat,
    /// `Sysfs::create_dir_all`.
    SysfsCreateDir,
    /// `Sysfs::create_file`.
    SysfsCreateFile,
    /// `Sysfs::remove_file`.
    SysfsRemove,
    /// `Cgroups::watch_oom`.
    CgroupWatchOom,
    /// `System::set_hostname`.
    SetHostname,
    /// `System::swapon`.
    Swapon,
    /// `System::statfs`.
    Statfs,
    /// `System::set_time`.
    SetTime,
    /// `System::pin_namespace`.
    PinNamespace,
    /// `Launcher::release`.
    Release,
    /// `Launcher::handles_signal`.
    HandlesSignal,
    /// `Sysfs::symlink_metadata`.
    SysfsLstat,
    /// `Sysfs::chown`.
    SysfsChown,
    /// `Sysfs::set_mode`.
    SysfsChmod,
    /// `Sysfs::symlink`.
    SysfsSymlink,
    /// `Netlink::neighbours`.
    Neighbours,
    /// `Netlink::del_neighbour`.
    DelNeighbour,
    /// `System::reseed_random`.
    Reseed,
    /// `FileTree::open_base`, `TreeDir::walk`, `TreeDir::open_file`.
    FilesOpen,
    /// Every change through the `FileTree` seam: writes, links, removals, renames, attributes.
    FilesWrite,
    /// `Transport::dial`.
    Dial,
    /// `Mounter::share_mount`.
    ShareMount,
}

impl Op {
    /// Every operation, in declaration order.
    pub const ALL: [Op; 50] = [
        Op::Mount,
        Op::Umount,
        Op::Mounts,
        Op::Links,
        Op::SetLink,
        Op::Addresses,
        Op::AddAddress,
        Op::DelAddress,
        Op::Routes,
        Op::AddRoute,
        Op::DelRoute,
        Op::AddNeighbour,
        Op::UeventRecv,
        Op::CgroupCreate,
        Op::CgroupAddProcess,
        Op::CgroupSet,
        Op::CgroupStats,
        Op::CgroupFreeze,
        Op::CgroupPids,
        Op::CgroupDestroy,
        Op::Listen,
        Op::Launch,
        Op::Signal,
        Op::SysfsRead,
        Op::SysfsWrite,
        Op::SysfsReadDir,
        Op::SysfsReadLink,
        Op::SysfsStat,
        Op::SysfsCreateDir,
        Op::SysfsCreateFile,
        Op::SysfsRemove,
        Op::CgroupWatchOom,
        Op::SetHostname,
        Op::Swapon,
        Op::Statfs,
        Op::SetTime,
        Op::PinNamespace,
        Op::Release,
        Op::HandlesSignal,
        Op::SysfsLstat,
        Op::SysfsChown,
        Op::SysfsChmod,
        Op::SysfsSymlink,
        Op::Neighbours,
        Op::DelNeighbour,
        Op::Reseed,
        Op::FilesOpen,
        Op::FilesWrite,
        Op::Dial,
        Op::ShareMount,
    ];
}

/// The `nth` call of `op` (1-based) counted from some starting point; see
/// [`Faults::points_since`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaultPoint {
    /// The operation.
    pub op: Op,
    /// Which call of it, from 1.
    pub nth: u64,
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} call #{}", self.op, self.nth)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Calls made so far, per operation (failed ones included).
    calls: BTreeMap<Op, u64>,
    /// Armed faults: (absolute call number that fails, errno).
    armed: BTreeMap<Op, Vec<(u64, Errno)>>,
}

/// Per-operation call counters and armed faults. Cheap to clone; clones share state, so one
/// `Faults` handed to every fake of a [`crate::FakeHost`] sees all of its calls.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    /// A fresh set: no calls counted, no faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next call of `op` fail with `errno`.
    pub fn fail_next(&self, op: Op, errno: Errno) {
        self.fail_nth(op, 1, errno);
    }

    /// Makes the `n`-th call of `op` from now (1 is the next one) fail with `errno`.
    ///
    /// # Panics
    ///
    /// When `n` is 0.
    pub fn fail_nth(&self, op: Op, n: u64, errno: Errno) {
        assert!(n > 0, "fail_nth counts calls from 1");
        let mut state = self.lock();
        let at = state.calls.get(&op).copied().unwrap_or(0) + n;
        state.armed.entry(op).or_default().push((at, errno));
    }

    /// Disarms every pending fault (call counters are kept).
    pub fn clear(&self) {
        self.lock().armed.clear();
    }

    /// How many armed faults have not fired yet.
    pub fn pending(&self) -> usize {
        self.lock().armed.values().map(Vec::len).sum()
    }

    /// How many times `op` was called (failed calls included).
    pub fn calls(&self, op: Op) -> u64 {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Every operation called at least once, with its call count.
    pub fn counts(&self) -> BTreeMap<Op, u64> {
        self.lock().calls.clone()
    }

    /// Every call made since `before` (a [`Faults::counts`] snapshot), as fault points
    /// relative to that snapshot: replaying the same steps from the same state with
    /// `fail_nth(point.op, point.nth, ..)` armed right after the snapshot fails exactly that call.
    pub fn points_since(&self, before: &BTreeMap<Op, u64>) -> Vec<FaultPoint> {
        let state = self.lock();
        let mut points = Vec::new();
        for (&op, &now) in &state.calls {
            let then = before.get(&op).copied().unwrap_or(0);
            points.extend((1..=now.saturating_sub(then)).map(|nth| FaultPoint { op, nth }));
        }
        points
    }

    /// Counts one call of `op` and fails it when a fault is armed for it. Every fake calls this
    /// first, before touching its state, so a failed call changes nothing.
    pub fn check(&self, op: Op) -> io::Result<()> {
        let mut state = self.lock();
        let count = state.calls.entry(op).or_insert(0);
        *count += 1;
        let now = *count;
        let Some(armed) = state.armed.get_mut(&op) else {
            return Ok(());
        };
        let Some(pos) = armed.iter().position(|&(at, _)| at == now) else {
            return Ok(());
        };
        let (_, errno) = armed.remove(pos);
        if armed.is_empty() {
            state.armed.remove(&op);
        }
        tracing::debug!(?op, call = now, %errno, "injected fault");
        Err(io::Error::from_raw_os_error(errno as i32))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// An `io::Error` carrying `errno`, as a failed syscall returns it.
pub(crate) fn errno(errno: Errno) -> io::Error {
    io::Error::from_raw_os_error(errno as i32)
}

/// Locks `mutex`, ignoring poisoning (a panicking test thread must not cascade into others).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
