//! The `Cgroups` seam: control groups, v1 or v2, and their statistics.

use std::collections::BTreeMap;
use std::io;

use oci_spec::runtime::LinuxResources;

/// Which cgroup hierarchy the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// CPU accounting of a cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Total CPU time, ns.
    pub usage_total: u64,
    /// CPU time per CPU, ns (v1 only).
    pub percpu_usage: Vec<u64>,
    /// Kernel-mode CPU time, ns.
    pub usage_kernel: u64,
    /// User-mode CPU time, ns.
    pub usage_user: u64,
    /// CFS periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Time throttled, ns.
    pub throttled_time: u64,
}

/// One memory counter set (usage, max usage, failures, limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryData {
    /// Current usage, bytes.
    pub usage: u64,
    /// Peak usage, bytes.
    pub max_usage: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
    /// The limit, bytes.
    pub limit: u64,
}

/// Memory accounting of a cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Page cache, bytes.
    pub cache: u64,
    /// Memory.
    pub usage: MemoryData,
    /// Memory plus swap.
    pub swap_usage: MemoryData,
    /// Kernel memory.
    pub kernel_usage: MemoryData,
    /// Whether the hierarchy is used (v1 `memory.use_hierarchy`).
    pub use_hierarchy: bool,
    /// The raw `memory.stat` counters.
    pub stats: BTreeMap<String, u64>,
}

/// Process counts of a cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PidsStats {
    /// Processes now.
    pub current: u64,
    /// The limit; 0 is unlimited.
    pub limit: u64,
}

/// One block-I/O counter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major.
    pub major: u64,
    /// Device minor.
    pub minor: u64,
    /// Operation (`Read`, `Write`, `Sync`, `Async`, `Total`...).
    pub op: String,
    /// The counter.
    pub value: u64,
}

/// Block-I/O accounting of a cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioStats {
    /// Bytes transferred.
    pub service_bytes: Vec<BlkioEntry>,
    /// Operations.
    pub serviced: Vec<BlkioEntry>,
    /// Queued operations.
    pub queued: Vec<BlkioEntry>,
    /// Time servicing, ns.
    pub service_time: Vec<BlkioEntry>,
    /// Time waiting, ns.
    pub wait_time: Vec<BlkioEntry>,
    /// Merged operations.
    pub merged: Vec<BlkioEntry>,
    /// Time, ms.
    pub time: Vec<BlkioEntry>,
    /// Sectors.
    pub sectors: Vec<BlkioEntry>,
}

/// Hugetlb accounting for one page size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HugetlbStats {
    /// Current usage, bytes.
    pub usage: u64,
    /// Peak usage, bytes.
    pub max_usage: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Statistics of one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU.
    pub cpu: CpuStats,
    /// Memory.
    pub memory: MemoryStats,
    /// Processes.
    pub pids: PidsStats,
    /// Block I/O.
    pub blkio: BlkioStats,
    /// Hugetlb by page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// Control groups, addressed by their path relative to the hierarchy root (`/kata/abc`).
///
/// All methods are blocking file operations on cgroupfs; call them off the async executor when
/// they may be slow (stats).
pub trait Cgroups: Send + Sync {
    /// The hierarchy in use.
    fn version(&self) -> CgroupVersion;

    /// Creates the cgroup (and its parents) in every controller; existing is fine. The parent
    /// directories this made are recorded ([`CreatedParents`]).
    fn create(&self, path: &str) -> io::Result<()>;

    /// Moves process `pid` into the cgroup.
    fn add_process(&self, path: &str, pid: i32) -> io::Result<()>;

    /// Applies resource limits. Unset fields are left alone.
    fn set(&self, path: &str, resources: &LinuxResources) -> io::Result<()>;

    /// Reads the cgroup's statistics.
    fn stats(&self, path: &str) -> io::Result<CgroupStats>;

    /// Freezes (`true`) or thaws (`false`) every process in the cgroup.
    fn freeze(&self, path: &str, frozen: bool) -> io::Result<()>;

    /// The processes in the cgroup.
    fn pids(&self, path: &str) -> io::Result<Vec<i32>>;

    /// Removes the cgroup from every controller; it must hold no processes. The parent
    /// directories that [`Cgroups::create`] made for it go too, once no cgroup created under them
    /// is left and they are empty (a cgroup made there by someone else keeps them).
    fn destroy(&self, path: &str) -> io::Result<()>;

    /// Watches the cgroup for OOM kills: one message per kill (only when the kernel's
    /// `oom_kill` counter goes up, from `memory.oom_control` on v1 or `memory.events` on v2).
    /// The channel closes when the cgroup goes away.
    fn watch_oom(&self, path: &str) -> io::Result<OomEvents>;
}

/// OOM kills of one cgroup, as [`Cgroups::watch_oom`] reports them.
pub type OomEvents = tokio::sync::mpsc::UnboundedReceiver<()>;

/// The parent directories that cgroup creations made (they were not there before), each counted
/// once per cgroup created below it, so that a destroy removes them with the last such cgroup
/// (`/a/b` creates `a`, which would otherwise outlive the container). Directories are plain
/// strings: cgroup paths on one hierarchy, or controller directories on v1.
#[derive(Debug, Default)]
pub struct CreatedParents {
    /// Directory → how many recorded cgroups are below it.
    counts: BTreeMap<String, usize>,
    /// Cgroup → the directories counted for it.
    leaves: BTreeMap<String, Vec<String>>,
}

impl CreatedParents {
    /// Records that cgroup `leaf` was just created (it did not exist): `parents` are its parent
    /// directories, outermost first, and `missing` those of them that did not exist before.
    /// Parents recorded already are counted again; pre-existing ones are not the agent's.
    pub fn created(&mut self, leaf: &str, parents: &[String], missing: &[String]) {
        if self.leaves.contains_key(leaf) {
            return;
        }
        let mut counted = Vec::new();
        for parent in parents {
            if let Some(n) = self.counts.get_mut(parent) {
                *n += 1;
            } else if missing.contains(parent) {
                self.counts.insert(parent.clone(), 1);
            } else {
                continue;
            }
            counted.push(parent.clone());
        }
        self.leaves.insert(leaf.to_owned(), counted);
    }

    /// Records that cgroup `leaf` was destroyed; returns the directories no recorded cgroup is
    /// below any more, innermost first, for the caller to remove.
    pub fn destroyed(&mut self, leaf: &str) -> Vec<String> {
        let Some(counted) = self.leaves.remove(leaf) else {
            return Vec::new();
        };
        let mut free = Vec::new();
        for parent in counted.into_iter().rev() {
            if let Some(n) = self.counts.get_mut(&parent) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&parent);
                    free.push(parent);
                }
            }
        }
        free
    }

    /// How many cgroups are recorded below `dir` (0 when the agent did not make it).
    pub fn count(&self, dir: &str) -> usize {
        self.counts.get(dir).copied().unwrap_or(0)
    }
}

/// The parent cgroup paths of `path` (`/a/b/c` gives `/a`, `/a/b`), outermost first, in the
/// form `path` has (with or without a leading `/`).
pub fn parent_paths(path: &str) -> Vec<String> {
    let lead = if path.starts_with('/') { "/" } else { "" };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    (1..parts.len())
        .map(|n| format!("{lead}{}", parts[..n].join("/")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parents_go_with_the_last_cgroup_created_under_them() {
        assert_eq!(parent_paths("/a/b/c"), strings(&["/a", "/a/b"]));
        assert_eq!(parent_paths("a/b"), strings(&["a"]));
        assert!(parent_paths("/c").is_empty());
        let mut p = CreatedParents::default();
        // /kubepods existed; /kubepods/pod1 did not.
        let parents = parent_paths("/kubepods/pod1/c1");
        p.created("/kubepods/pod1/c1", &parents, &strings(&["/kubepods/pod1"]));
        p.created("/kubepods/pod1/c2", &parents, &[]);
        p.created("/kubepods/pod1/c2", &parents, &[]);
        assert_eq!(p.count("/kubepods/pod1"), 2);
        assert_eq!(p.count("/kubepods"), 0);
        assert!(p.destroyed("/kubepods/pod1/c1").is_empty());
        assert!(p.destroyed("/unknown").is_empty());
        assert_eq!(
            p.destroyed("/kubepods/pod1/c2"),
            strings(&["/kubepods/pod1"])
        );
        assert!(
            p.destroyed("/kubepods/pod1/c2").is_empty(),
            "destroyed twice"
        );
        // Nested: both made by one create, removed innermost first.
        p.created("/x/y/z", &parent_paths("/x/y/z"), &strings(&["/x", "/x/y"]));
        assert_eq!(p.destroyed("/x/y/z"), strings(&["/x/y", "/x"]));
    }
}
