//! The `System` seam: process-wide kernel settings that are neither mounts nor devices.

use std::io;
use std::path::Path;

/// Filesystem usage, from statfs(2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Fundamental block size, bytes.
    pub block_size: u64,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Blocks available to unprivileged users.
    pub blocks_available: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
}

/// A namespace kind that can be pinned (kept alive by a bind mount of its nsfs file) without a
/// process in it: the sandbox's shared IPC and UTS namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamespaceKind {
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Hostname and NIS domain name.
    Uts,
}

impl NamespaceKind {
    /// The name the kernel uses under `/proc/<pid>/ns/` (`ipc`, `uts`).
    pub fn name(self) -> &'static str {
        match self {
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
        }
    }
}

/// Kernel settings of the guest as a whole.
pub trait System: Send + Sync {
    /// sethostname(2) in the agent's UTS namespace.
    fn set_hostname(&self, name: &str) -> io::Result<()>;

    /// swapon(2) on a block device or file.
    fn swapon(&self, path: &Path) -> io::Result<()>;

    /// statfs(2) of the filesystem holding `path`.
    fn statfs(&self, path: &Path) -> io::Result<FsStats>;

    /// settimeofday(2).
    fn set_time(&self, secs: i64, usecs: i64) -> io::Result<()>;

    /// Mixes `data` into the kernel's entropy pool, credits it (`RNDADDTOENTCNT`, one bit per
    /// byte, as Kata) and reseeds the CRNG (`RNDRESEEDCRNG`).
    fn reseed_random(&self, data: &[u8]) -> io::Result<()>;

    /// The agent's process id (1 when it is the guest's init).
    fn process_id(&self) -> u32;

    /// Creates a new namespace of `kind` (for [`NamespaceKind::Uts`], with hostname `hostname`
    /// when given) and pins it by bind-mounting its nsfs file onto `target`, an existing regular
    /// file. The pin is a mount: unmounting `target` ([`crate::host::Mounter::umount`]) releases
    /// the namespace. The agent's own namespaces are unchanged.
    fn pin_namespace(
        &self,
        kind: NamespaceKind,
        hostname: Option<&str>,
        target: &Path,
    ) -> io::Result<()>;
}
