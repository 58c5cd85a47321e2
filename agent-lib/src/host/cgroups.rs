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

    /// Creates the cgroup (and its parents) in every controller; existing is fine.
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

    /// Removes the cgroup from every controller; it must hold no processes.
    fn destroy(&self, path: &str) -> io::Result<()>;

    /// Watches the cgroup for OOM kills: one message per kill (only when the kernel's
    /// `oom_kill` counter goes up, from `memory.oom_control` on v1 or `memory.events` on v2).
    /// The channel closes when the cgroup goes away.
    fn watch_oom(&self, path: &str) -> io::Result<OomEvents>;
}

/// OOM kills of one cgroup, as [`Cgroups::watch_oom`] reports them.
pub type OomEvents = tokio::sync::mpsc::UnboundedReceiver<()>;
