//! The real [`Cgroups`]: cgroupfs through cgroups-rs's `FsManager`, v1 or v2.
//!
//! cgroups-rs decides the hierarchy itself (`statfs("/sys/fs/cgroup")`: cgroup2 magic means v2),
//! so this implementation always agrees with what is mounted; [`LinuxCgroups::with_version`]
//! checks that the mounted hierarchy is the one the agent configuration asks for. Build it after
//! the agent has mounted `/sys/fs/cgroup`.
//!
//! Conversions done by cgroups-rs, not here: v1 `cpu.shares` to v2 `cpu.weight`
//! (`FsManager::set` converts when on v2) and OCI memory+swap to v2 `memory.swap.max`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::{Cgroup, Subsystem, hierarchies};
use cgroups_rs::manager::{FsManager, Manager};
use cgroups_rs::{CgroupPid, FreezerState};
use oci_spec::runtime::LinuxResources;

use crate::host::{
    BlkioEntry, BlkioStats, CgroupStats, CgroupVersion, Cgroups, CpuStats, CreatedParents,
    HugetlbStats, MemoryData, MemoryStats, OomEvents, PidsStats, parent_paths,
};

/// How long [`Cgroups::freeze`] waits for a v1 freezer to leave `FREEZING`.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// One managed cgroup: the cgroups-rs manager and a plain handle on the same directories.
struct Entry {
    manager: FsManager,
    cgroup: Cgroup,
}

/// Control groups on cgroupfs, one cgroups-rs `FsManager` per cgroup path.
///
/// Paths are relative to the hierarchy root (`/kata/abc` and `kata/abc` are the same cgroup);
/// `..`, `.` and the root itself are rejected. Each cgroup has its own lock, so a slow call on
/// one cgroup does not hold up the others; the map lock is held only to look an entry up.
pub struct LinuxCgroups {
    version: CgroupVersion,
    entries: Mutex<HashMap<String, Arc<Mutex<Entry>>>>,
    /// The parent directories `create` made, by controller directory. Held across a create or
    /// a destroy's parent removal only (a few mkdir/rmdir on cgroupfs), so that a parent is
    /// never removed while a sibling is being created under it.
    parents: Mutex<CreatedParents>,
}

impl std::fmt::Debug for LinuxCgroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxCgroups")
            .field("version", &self.version)
            .field("cgroups", &self.lock_entries().len())
            .finish()
    }
}

/// The hierarchy mounted at `/sys/fs/cgroup`: v2 if it is a cgroup2 filesystem, else v1.
pub fn detect_version() -> CgroupVersion {
    if hierarchies::is_cgroup2_unified_mode() {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}

impl LinuxCgroups {
    /// Uses whatever hierarchy is mounted at `/sys/fs/cgroup` ([`detect_version`]).
    pub fn detect() -> Self {
        Self::unverified(detect_version())
    }

    /// Uses `version`, which the agent configuration decided; fails with `InvalidInput` when the
    /// hierarchy mounted at `/sys/fs/cgroup` is the other one.
    pub fn with_version(version: CgroupVersion) -> io::Result<Self> {
        let cgroups = Self::unverified(version);
        cgroups.verify()?;
        Ok(cgroups)
    }

    /// Uses `version` without looking at `/sys/fs/cgroup` yet: for an agent that mounts the
    /// hierarchy later. Call [`LinuxCgroups::verify`] once it is mounted, before any use.
    pub fn unverified(version: CgroupVersion) -> Self {
        LinuxCgroups {
            version,
            entries: Mutex::new(HashMap::new()),
            parents: Mutex::default(),
        }
    }

    /// Fails with `InvalidInput` when the hierarchy mounted at `/sys/fs/cgroup` is not the
    /// version this seam uses.
    pub fn verify(&self) -> io::Result<()> {
        let mounted = detect_version();
        if mounted != self.version {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cgroup {:?} was asked for but /sys/fs/cgroup holds {mounted:?}",
                    self.version
                ),
            ));
        }
        Ok(())
    }

    fn lock_entries(&self) -> MutexGuard<'_, HashMap<String, Arc<Mutex<Entry>>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `path`: the cached one, or a manager for a cgroup that already exists on
    /// disk (created by an earlier agent, say). `NotFound` when there is no such cgroup.
    fn entry(&self, path: &str) -> io::Result<(String, Arc<Mutex<Entry>>)> {
        let rel = relative(path)?;
        if let Some(entry) = self.lock_entries().get(&rel) {
            return Ok((rel, Arc::clone(entry)));
        }
        let entry = load(&rel)?;
        if !entry.cgroup.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no cgroup {rel}"),
            ));
        }
        let entry = Arc::clone(
            self.lock_entries()
                .entry(rel.clone())
                .or_insert_with(|| Arc::new(Mutex::new(entry))),
        );
        Ok((rel, entry))
    }

    /// Runs `f` on the entry for `path`, under that entry's lock only.
    fn with_entry<T>(
        &self,
        op: &'static str,
        path: &str,
        f: impl FnOnce(&mut Entry) -> io::Result<T>,
    ) -> io::Result<T> {
        let (rel, entry) = self.entry(path)?;
        let mut guard = entry.lock().unwrap_or_else(|e| e.into_inner());
        if !guard.cgroup.exists() {
            // Removed behind our back.
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{op}: no cgroup {rel}"),
            ));
        }
        guarded(op, &rel, || f(&mut guard))
    }
}

impl Cgroups for LinuxCgroups {
    fn version(&self) -> CgroupVersion {
        self.version
    }

    fn create(&self, path: &str) -> io::Result<()> {
        let rel = relative(path)?;
        let existing = self.lock_entries().get(&rel).cloned();
        let entry = match existing {
            Some(entry) => entry,
            None => Arc::new(Mutex::new(load(&rel)?)),
        };
        let mut parents = self.parents.lock().unwrap_or_else(|e| e.into_inner());
        {
            let guard = entry.lock().unwrap_or_else(|e| e.into_inner());
            let existed = guard.cgroup.exists();
            let dirs = parent_dirs(&rel);
            let missing: Vec<String> = dirs
                .iter()
                .filter(|d| !std::path::Path::new(d).exists())
                .cloned()
                .collect();
            if guard.cgroup.subsystems().is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no cgroup controller is mounted under /sys/fs/cgroup",
                ));
            }
            guarded("create", &rel, || {
                guard
                    .cgroup
                    .create()
                    .map_err(|e| map_err("create", &rel, &e))
            })?;
            if !existed {
                parents.created(&rel, &dirs, &missing);
            }
        }
        drop(parents);
        self.lock_entries().entry(rel.clone()).or_insert(entry);
        tracing::debug!(cgroup = %rel, "cgroup created");
        Ok(())
    }

    fn add_process(&self, path: &str, pid: i32) -> io::Result<()> {
        let pid = u64::try_from(pid)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| invalid(format!("add_process: invalid pid {pid}")))?;
        self.with_entry("add_process", path, |e| {
            e.manager
                .add_proc(CgroupPid::from(pid))
                .map_err(|err| map_err("add_process", path, &err))
        })
    }

    fn set(&self, path: &str, resources: &LinuxResources) -> io::Result<()> {
        self.with_entry("set", path, |e| {
            e.manager
                .set(resources)
                .map_err(|err| map_err("set", path, &err))
        })
    }

    fn stats(&self, path: &str) -> io::Result<CgroupStats> {
        let version = self.version;
        self.with_entry("stats", path, |e| Ok(convert_stats(e, version)))
    }

    fn freeze(&self, path: &str, frozen: bool) -> io::Result<()> {
        let version = self.version;
        self.with_entry("freeze", path, |e| {
            let state = if frozen {
                FreezerState::Frozen
            } else {
                FreezerState::Thawed
            };
            e.manager
                .freeze(state)
                .map_err(|err| map_err("freeze", path, &err))?;
            if frozen && version == CgroupVersion::V1 {
                wait_frozen(e, path)?;
            }
            Ok(())
        })
    }

    fn pids(&self, path: &str) -> io::Result<Vec<i32>> {
        self.with_entry("pids", path, |e| {
            let mut pids = Vec::new();
            for subsystem in e.cgroup.subsystems() {
                let dir = subsystem.to_controller().path().to_owned();
                let text = match fs::read_to_string(dir.join("cgroup.procs")) {
                    Ok(text) => text,
                    // A v1 controller where the cgroup was never created (mounted later).
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                };
                pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            pids.sort_unstable();
            pids.dedup();
            Ok(pids)
        })
    }

    fn destroy(&self, path: &str) -> io::Result<()> {
        let (rel, entry) = match self.entry(path) {
            Ok(found) => found,
            // Already gone: destroying is idempotent.
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        {
            let mut guard = entry.lock().unwrap_or_else(|e| e.into_inner());
            guarded("destroy", &rel, || {
                guard
                    .manager
                    .destroy()
                    .map_err(|err| map_err("destroy", &rel, &err))
            })?;
        }
        {
            let mut entries = self.lock_entries();
            if entries.get(&rel).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
                entries.remove(&rel);
            }
        }
        tracing::debug!(cgroup = %rel, "cgroup destroyed");
        let mut parents = self.parents.lock().unwrap_or_else(|e| e.into_inner());
        for dir in parents.destroyed(&rel) {
            match fs::remove_dir(&dir) {
                Ok(()) => tracing::debug!(dir = %dir, "removed a parent cgroup the agent made"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // Something the agent did not make lives there now: it stays.
                Err(e) => tracing::info!(dir = %dir, error = %e, "parent cgroup kept"),
            }
        }
        Ok(())
    }

    fn watch_oom(&self, path: &str) -> io::Result<OomEvents> {
        let dir = self.with_entry("watch_oom", path, |e| {
            e.cgroup
                .subsystems()
                .iter()
                .find(|s| self.version == CgroupVersion::V2 || matches!(s, Subsystem::Mem(_)))
                .map(|s| s.to_controller().path().to_owned())
                .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no memory controller"))
        })?;
        if self.version == CgroupVersion::V2 && !dir.join("memory.events").exists() {
            // The memory controller is not enabled for this cgroup.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("no memory controller in {}", dir.display()),
            ));
        }
        super::oom::watch(self.version, &dir)
    }
}

/// The directories of the parent cgroups of `rel`, outermost first: one per controller on v1.
fn parent_dirs(rel: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    for parent in parent_paths(rel) {
        let cgroup = Cgroup::load(hierarchies::auto(), parent.as_str());
        for subsystem in cgroup.subsystems() {
            dirs.push(subsystem.to_controller().path().display().to_string());
        }
    }
    dirs.dedup();
    dirs
}

/// A manager and a handle for the cgroup at `rel` (nothing is created).
fn load(rel: &str) -> io::Result<Entry> {
    guarded("load", rel, || {
        let manager = FsManager::new(rel).map_err(|e| map_err("load", rel, &e))?;
        let cgroup = Cgroup::load(hierarchies::auto(), rel);
        Ok(Entry { manager, cgroup })
    })
}

/// `path` relative to the hierarchy root, checked: cgroups-rs joins paths with `PathBuf::push`,
/// where an absolute path replaces the mount point and `..` climbs out of it.
fn relative(path: &str) -> io::Result<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" => {}
            "." | ".." => return Err(invalid(format!("cgroup path {path:?}: {part:?}"))),
            p if p.contains('\0') => return Err(invalid(format!("cgroup path {path:?}: NUL"))),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(invalid(format!(
            "cgroup path {path:?}: the root cgroup is not managed"
        )));
    }
    Ok(parts.join("/"))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A cgroups-rs error as an `io::Error`: the errno of the underlying I/O error when there is
/// one, otherwise `Other` with the message.
fn map_err(op: &str, path: &str, err: &(dyn std::error::Error + 'static)) -> io::Error {
    tracing::debug!(op, cgroup = %path, error = %err, "cgroup operation failed");
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(errno) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return io::Error::from_raw_os_error(errno);
        }
        cause = e.source();
    }
    io::Error::other(format!("cgroup {op} {path}: {err}"))
}

/// Runs `f`, turning a panic inside cgroups-rs (it unwraps some parses of cgroupfs files) into
/// an error.
fn guarded<T>(op: &str, path: &str, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!(op, cgroup = %path, "cgroups-rs panicked");
        Err(io::Error::other(format!(
            "cgroup {op} {path}: cgroups-rs panicked"
        )))
    })
}

/// Waits until a v1 freezer reports `FROZEN` (it passes through `FREEZING`); on timeout thaws
/// again and fails with `TimedOut`.
fn wait_frozen(e: &Entry, path: &str) -> io::Result<()> {
    let Some(freezer) = e.cgroup.controller_of::<FreezerController>() else {
        return Ok(());
    };
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    loop {
        match freezer.state() {
            Ok(FreezerState::Frozen) => return Ok(()),
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(_) => {
                let _ = e.manager.freeze(FreezerState::Thawed);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("cgroup {path} did not freeze within {FREEZE_TIMEOUT:?}"),
                ));
            }
            Err(err) => return Err(map_err("freeze", path, &err)),
        }
    }
}

/// cgroups-rs statistics as the domain [`CgroupStats`].
fn convert_stats(e: &Entry, version: CgroupVersion) -> CgroupStats {
    let raw = e.manager.stats();
    CgroupStats {
        cpu: cpu_stats(e, &raw, version),
        memory: memory_stats(e, &raw),
        pids: PidsStats {
            current: raw.pids.current,
            limit: u64::try_from(raw.pids.limit).unwrap_or(0),
        },
        blkio: blkio_stats(&raw.blkio),
        hugetlb: raw
            .hugetlb
            .iter()
            .map(|(size, s)| {
                let stats = HugetlbStats {
                    usage: s.usage,
                    max_usage: s.max_usage,
                    failcnt: s.fail_cnt,
                };
                (size.clone(), stats)
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn cpu_stats(e: &Entry, raw: &cgroups_rs::stats::CgroupStats, version: CgroupVersion) -> CpuStats {
    let mut cpu = CpuStats::default();
    if let Some(acct) = &raw.cpu.cpu_acct {
        // v1 `cpuacct.stat` counts USER_HZ ticks; the domain wants ns.
        let tick_ns = tick_ns();
        cpu.usage_total = acct.total_usage;
        cpu.usage_kernel = acct.system_usage.saturating_mul(tick_ns);
        cpu.usage_user = acct.user_usage.saturating_mul(tick_ns);
    }
    if let Some(acct) = e.cgroup.controller_of::<CpuAcctController>() {
        let acct = acct.cpuacct();
        // One line of space-separated values, which cgroups-rs parses as one value per line.
        cpu.percpu_usage = acct
            .usage_percpu
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // `cpuacct.usage_sys`/`usage_user` (Linux ≥ 4.7) are exact ns.
        if acct.usage_sys != 0 || acct.usage_user != 0 {
            cpu.usage_kernel = acct.usage_sys;
            cpu.usage_user = acct.usage_user;
        }
    }
    if let Some(throttling) = &raw.cpu.cpu_throttling {
        cpu.periods = throttling.periods;
        cpu.throttled_periods = throttling.throttled_periods;
        cpu.throttled_time = throttling.throttled_time;
    }
    if version == CgroupVersion::V2 {
        v2_cpu_stat(e, &mut cpu);
    }
    cpu
}

fn memory_stats(e: &Entry, raw: &cgroups_rs::stats::CgroupStats) -> MemoryStats {
    let data = |m: &Option<cgroups_rs::stats::MemoryStats>| {
        m.as_ref()
            .map(|m| MemoryData {
                usage: m.usage,
                max_usage: m.max_usage,
                failcnt: m.fail_cnt,
                // v2 reports "max" as -1: unlimited.
                limit: u64::try_from(m.limit).unwrap_or(u64::MAX),
            })
            .unwrap_or_default()
    };
    MemoryStats {
        cache: raw.memory.cache,
        usage: data(&raw.memory.memory),
        swap_usage: data(&raw.memory.memory_swap),
        kernel_usage: data(&raw.memory.kernel_memory),
        use_hierarchy: raw.memory.use_hierarchy,
        stats: e
            .cgroup
            .controller_of::<MemController>()
            .map(|m| m.memory_stat().stat.raw.into_iter().collect())
            .unwrap_or_default(),
    }
}

fn blkio_stats(b: &cgroups_rs::stats::BlkioCgroupStats) -> BlkioStats {
    let entries = |list: &[cgroups_rs::stats::BlkioStat]| {
        list.iter()
            .map(|s| BlkioEntry {
                major: s.major,
                minor: s.minor,
                op: s.op.clone(),
                value: s.value,
            })
            .collect::<Vec<_>>()
    };
    BlkioStats {
        service_bytes: entries(&b.io_service_bytes_recursive),
        serviced: entries(&b.io_serviced_recursive),
        queued: entries(&b.io_queued_recursive),
        service_time: entries(&b.io_service_time_recursive),
        wait_time: entries(&b.io_wait_time_recursive),
        merged: entries(&b.io_merged_recursive),
        time: entries(&b.io_time_recursive),
        sectors: entries(&b.sectors_recursive),
    }
}

/// v2 has no cpuacct: usage and throttled time come from `cpu.stat`, in µs.
fn v2_cpu_stat(e: &Entry, cpu: &mut CpuStats) {
    let Some(dir) = e
        .cgroup
        .subsystems()
        .first()
        .map(|s| PathBuf::from(s.to_controller().path()))
    else {
        return;
    };
    let Ok(text) = fs::read_to_string(dir.join("cpu.stat")) else {
        return;
    };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(Ok(value))) = (words.next(), words.next().map(str::parse::<u64>))
        else {
            continue;
        };
        let ns = value.saturating_mul(1000);
        match key {
            "usage_usec" => cpu.usage_total = ns,
            "user_usec" => cpu.usage_user = ns,
            "system_usec" => cpu.usage_kernel = ns,
            "nr_periods" => cpu.periods = value,
            "nr_throttled" => cpu.throttled_periods = value,
            "throttled_usec" => cpu.throttled_time = ns,
            _ => {}
        }
    }
}

/// Nanoseconds per USER_HZ tick.
fn tick_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    match u64::try_from(hz) {
        Ok(hz) if hz > 0 => 1_000_000_000 / hz,
        _ => 10_000_000,
    }
}

#[cfg(test)]
#[path = "cgroups_tests.rs"]
mod tests;
