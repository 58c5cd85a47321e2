//! `FakeCgroups`: a tree of cgroups with their resources, members, freezer state and stats.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex};

use kata_agent::host::{
    CgroupStats, CgroupVersion, Cgroups, CreatedParents, OomEvents, parent_paths,
};
use nix::errno::Errno;
use oci_spec::runtime::LinuxResources;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::faults::{Faults, Op, errno, lock};

/// What the fake knows about one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupState {
    /// Every limit applied so far, merged (later `set`s override only the fields they set).
    pub resources: LinuxResources,
    /// Member processes, sorted.
    pub pids: Vec<i32>,
    /// Whether the cgroup is frozen.
    pub frozen: bool,
    /// What [`Cgroups::stats`] returns (see [`FakeCgroups::set_stats`]).
    pub stats: CgroupStats,
}

#[derive(Debug, Default)]
struct GateState {
    held: bool,
    waiting: usize,
}

/// Makes [`Cgroups::stats`] block, as a read of a cgroup being torn down can.
#[derive(Debug, Default)]
struct StatsGate {
    state: Mutex<GateState>,
    released: Condvar,
}

impl StatsGate {
    fn pass(&self) {
        let mut state = lock(&self.state);
        state.waiting += 1;
        while state.held {
            state = self.released.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting -= 1;
    }
}

/// While alive, every [`Cgroups::stats`] call blocks its thread (see
/// [`FakeCgroups::hold_stats`]); dropping it lets them through.
#[derive(Debug)]
pub struct StatsHold {
    gate: Arc<StatsGate>,
}

impl StatsHold {
    /// How many `stats` calls are blocked right now.
    pub fn waiting(&self) -> usize {
        lock(&self.gate.state).waiting
    }
}

impl Drop for StatsHold {
    fn drop(&mut self) {
        lock(&self.gate.state).held = false;
        self.gate.released.notify_all();
    }
}

/// Normalises `/a/b`, `a/b/` and `a//b` to `/a/b`; the root is `/`. `..` and `.` are `EINVAL`.
fn normalize(path: &str) -> io::Result<String> {
    let mut out = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(errno(Errno::EINVAL));
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// Merges `update` into `base`: objects key by key, anything else (numbers, lists) replaced;
/// `null` and absent fields leave the old value.
fn merge(base: &mut Value, update: Value) {
    match (base, update) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(update)) => {
            for (key, value) in update {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, update) => *base = update,
    }
}

fn merged(base: &LinuxResources, update: &LinuxResources) -> io::Result<LinuxResources> {
    let invalid = |e: serde_json::Error| io::Error::new(io::ErrorKind::InvalidInput, e);
    let mut value = serde_json::to_value(base).map_err(invalid)?;
    merge(&mut value, serde_json::to_value(update).map_err(invalid)?);
    serde_json::from_value(value).map_err(invalid)
}

/// A cgroup tree in memory, addressed like the real one by paths relative to the hierarchy
/// root (`/kata/abc`; `kata/abc` and trailing slashes are the same path).
///
/// [`Cgroups::set`] merges like a sequence of cgroupfs writes: nested settings merge field by
/// field and unset fields keep their values, while lists (devices, hugepage limits, throttled
/// devices) replace the previous list.
///
/// Errors follow cgroupfs: `ENOENT` for a missing cgroup, `EBUSY` to destroy one that has
/// member processes or child cgroups (or the root), `EINVAL` for a pid below 1 or a path with
/// `.`/`..`; with [`CgroupVersion::V1`], a memory+swap limit below the memory limit is `EINVAL`.
/// A pid belongs to one cgroup at a time: adding it elsewhere moves it. Exited processes leave
/// their cgroup through [`FakeCgroups::process_exited`] (a [`crate::FakeHost`] wires this to its
/// launcher). Parents a create made are removed with the last cgroup created below them, when
/// empty ([`CreatedParents`]), as the real implementation does.
#[derive(Debug)]
pub struct FakeCgroups {
    faults: Faults,
    version: CgroupVersion,
    tree: Mutex<BTreeMap<String, CgroupState>>,
    /// Taken only while `tree` is held.
    parents: Mutex<CreatedParents>,
    oom_watchers: Mutex<BTreeMap<String, Vec<UnboundedSender<()>>>>,
    stats_gate: Arc<StatsGate>,
}

impl FakeCgroups {
    /// A tree holding only the root cgroup.
    pub fn new(version: CgroupVersion, faults: Faults) -> Self {
        FakeCgroups {
            faults,
            version,
            tree: Mutex::new(BTreeMap::from([("/".to_owned(), CgroupState::default())])),
            parents: Mutex::default(),
            oom_watchers: Mutex::default(),
            stats_gate: Arc::default(),
        }
    }

    /// Makes every [`Cgroups::stats`] call block (a blocking wait on its own thread, as a stuck
    /// cgroupfs read) until the returned hold is dropped.
    pub fn hold_stats(&self) -> StatsHold {
        lock(&self.stats_gate.state).held = true;
        StatsHold {
            gate: Arc::clone(&self.stats_gate),
        }
    }

    /// Plays an OOM kill in `path`: every watcher gets one event. Returns how many watchers
    /// there were (`ENOENT` if the cgroup does not exist).
    pub fn trigger_oom(&self, path: &str) -> io::Result<usize> {
        let path = normalize(path)?;
        if !lock(&self.tree).contains_key(&path) {
            return Err(errno(Errno::ENOENT));
        }
        let mut watchers = lock(&self.oom_watchers);
        let list = watchers.entry(path).or_default();
        list.retain(|tx| tx.send(()).is_ok());
        Ok(list.len())
    }

    /// Sets what [`Cgroups::stats`] returns for `path` (`ENOENT` if it does not exist).
    pub fn set_stats(&self, path: &str, stats: CgroupStats) -> io::Result<()> {
        let path = normalize(path)?;
        let mut tree = lock(&self.tree);
        tree.get_mut(&path)
            .ok_or_else(|| errno(Errno::ENOENT))?
            .stats = stats;
        Ok(())
    }

    /// The state of the cgroup at `path`, if it exists (not counted as a call).
    pub fn state(&self, path: &str) -> Option<CgroupState> {
        let path = normalize(path).ok()?;
        lock(&self.tree).get(&path).cloned()
    }

    /// Whether the cgroup at `path` exists (not counted as a call).
    pub fn exists(&self, path: &str) -> bool {
        normalize(path).is_ok_and(|p| lock(&self.tree).contains_key(&p))
    }

    /// Every cgroup below the root, sorted (not counted as a call).
    pub fn paths(&self) -> Vec<String> {
        lock(&self.tree)
            .keys()
            .filter(|p| *p != "/")
            .cloned()
            .collect()
    }

    /// The cgroup holding `pid`, if any.
    pub fn cgroup_of(&self, pid: i32) -> Option<String> {
        lock(&self.tree)
            .iter()
            .find(|(_, cg)| cg.pids.contains(&pid))
            .map(|(path, _)| path.clone())
    }

    /// Removes `pid` from its cgroup, as the kernel does when a process exits.
    pub fn process_exited(&self, pid: i32) {
        for cg in lock(&self.tree).values_mut() {
            cg.pids.retain(|&p| p != pid);
        }
    }

    fn with_cgroup<T>(
        &self,
        path: &str,
        f: impl FnOnce(&mut CgroupState) -> io::Result<T>,
    ) -> io::Result<T> {
        let path = normalize(path)?;
        let mut tree = lock(&self.tree);
        f(tree.get_mut(&path).ok_or_else(|| errno(Errno::ENOENT))?)
    }

    fn check_limits(&self, resources: &LinuxResources) -> io::Result<()> {
        if self.version == CgroupVersion::V1
            && let Some(memory) = resources.memory()
            && let (Some(limit), Some(swap)) = (memory.limit(), memory.swap())
            && limit > 0
            && swap > 0
            && swap < limit
        {
            return Err(errno(Errno::EINVAL));
        }
        Ok(())
    }
}

impl Cgroups for FakeCgroups {
    fn version(&self) -> CgroupVersion {
        self.version
    }

    fn create(&self, path: &str) -> io::Result<()> {
        self.faults.check(Op::CgroupCreate)?;
        let path = normalize(path)?;
        let mut tree = lock(&self.tree);
        let existed = tree.contains_key(&path);
        let parents = parent_paths(&path);
        let missing: Vec<String> = parents
            .iter()
            .filter(|p| !tree.contains_key(*p))
            .cloned()
            .collect();
        let mut cur = Some(path.as_str());
        while let Some(p) = cur {
            tree.entry(p.to_owned()).or_default();
            cur = parent(p);
        }
        if !existed {
            lock(&self.parents).created(&path, &parents, &missing);
        }
        Ok(())
    }

    fn add_process(&self, path: &str, pid: i32) -> io::Result<()> {
        self.faults.check(Op::CgroupAddProcess)?;
        if pid < 1 {
            return Err(errno(Errno::EINVAL));
        }
        let path = normalize(path)?;
        let mut tree = lock(&self.tree);
        if !tree.contains_key(&path) {
            return Err(errno(Errno::ENOENT));
        }
        for cg in tree.values_mut() {
            cg.pids.retain(|&p| p != pid);
        }
        let pids = &mut tree
            .get_mut(&path)
            .ok_or_else(|| errno(Errno::ENOENT))?
            .pids;
        pids.push(pid);
        pids.sort_unstable();
        Ok(())
    }

    fn set(&self, path: &str, resources: &LinuxResources) -> io::Result<()> {
        self.faults.check(Op::CgroupSet)?;
        self.with_cgroup(path, |cg| {
            let next = merged(&cg.resources, resources)?;
            self.check_limits(&next)?;
            cg.resources = next;
            Ok(())
        })
    }

    fn stats(&self, path: &str) -> io::Result<CgroupStats> {
        self.faults.check(Op::CgroupStats)?;
        self.stats_gate.pass();
        self.with_cgroup(path, |cg| Ok(cg.stats.clone()))
    }

    fn freeze(&self, path: &str, frozen: bool) -> io::Result<()> {
        self.faults.check(Op::CgroupFreeze)?;
        self.with_cgroup(path, |cg| {
            cg.frozen = frozen;
            Ok(())
        })
    }

    fn pids(&self, path: &str) -> io::Result<Vec<i32>> {
        self.faults.check(Op::CgroupPids)?;
        self.with_cgroup(path, |cg| Ok(cg.pids.clone()))
    }

    fn destroy(&self, path: &str) -> io::Result<()> {
        self.faults.check(Op::CgroupDestroy)?;
        let path = normalize(path)?;
        let mut tree = lock(&self.tree);
        let cg = tree.get(&path).ok_or_else(|| errno(Errno::ENOENT))?;
        let prefix = format!("{path}/");
        let has_children = tree.keys().any(|k| k.starts_with(&prefix));
        if path == "/" || !cg.pids.is_empty() || has_children {
            return Err(errno(Errno::EBUSY));
        }
        tree.remove(&path);
        lock(&self.oom_watchers).remove(&path);
        for dir in lock(&self.parents).destroyed(&path) {
            let prefix = format!("{dir}/");
            let busy = tree.keys().any(|k| k.starts_with(&prefix))
                || tree.get(&dir).is_some_and(|cg| !cg.pids.is_empty());
            if !busy {
                tree.remove(&dir);
            }
        }
        Ok(())
    }

    fn watch_oom(&self, path: &str) -> io::Result<OomEvents> {
        self.faults.check(Op::CgroupWatchOom)?;
        let path = normalize(path)?;
        if !lock(&self.tree).contains_key(&path) {
            return Err(errno(Errno::ENOENT));
        }
        let (tx, rx) = unbounded_channel();
        lock(&self.oom_watchers).entry(path).or_default().push(tx);
        Ok(rx)
    }
}
