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
}
