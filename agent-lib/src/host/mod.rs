//! The seams between the agent and the operating system.
//!
//! Every OS facility the agent uses sits behind one small, object-safe, `Send + Sync` trait.
//! Real implementations live in [`crate::linux`]; in-memory fakes live in the `agent-fakes`
//! crate. Errors are `std::io::Error` so an errno survives the seam unchanged (fakes inject
//! failures as errnos).

mod agent_files;
mod cgroups;
mod file_tree;
mod launcher;
mod mounter;
mod netlink;
mod server_addr;
mod sysfs;
mod system;
mod transport;
mod uevent;

use std::sync::Arc;

pub use agent_files::AgentFiles;
pub use cgroups::{
    BlkioEntry, BlkioStats, CgroupStats, CgroupVersion, Cgroups, CpuStats, CreatedParents,
    HugetlbStats, MemoryData, MemoryStats, OomEvents, PidsStats, parent_paths,
};
pub use file_tree::{FileTree, OpenMode, TreeDir, TreeFile};
pub use launcher::{
    ContainerSetup, ExitStatus, LaunchRequest, LaunchTarget, Launched, Launcher, ProcessSpec,
    StdioMode,
};
pub use mounter::{MountEntry, MountSpec, Mounter, ShareMount};
pub use netlink::{Address, Link, LinkUpdate, Neighbour, Netlink, Route};
pub use server_addr::{ServerAddr, ServerAddrError};
pub use sysfs::{FileMeta, NodeInfo, NodeKind, Sysfs};
pub use system::{FsStats, NamespaceKind, System};
pub use transport::{Accepted, Connection, Incoming, IncomingPeers, Transport};
pub use uevent::UeventSource;

/// The OS facilities an agent runs on, built once by the binary (real) or a harness (fakes).
#[derive(Clone)]
pub struct Host {
    /// mount(2), umount(2) and the mount table.
    pub mounter: Arc<dyn Mounter>,
    /// Links, addresses, routes and neighbours.
    pub netlink: Arc<dyn Netlink>,
    /// The kernel's uevent stream.
    pub uevents: Arc<dyn UeventSource>,
    /// Control groups, v1 or v2.
    pub cgroups: Arc<dyn Cgroups>,
    /// Where host connections (ttrpc, logs, console) come from.
    pub transport: Arc<dyn Transport>,
    /// Starts processes, signals them and reports their exits.
    pub launcher: Arc<dyn Launcher>,
    /// /sys, /dev and /proc (and any file) as the agent reads them and writes attributes.
    pub sysfs: Arc<dyn Sysfs>,
    /// The files and folders the agent makes for itself.
    pub agent_files: Arc<dyn AgentFiles>,
    /// Hostname, swap, filesystem usage, clock, entropy.
    pub system: Arc<dyn System>,
    /// Files the host copies in (CopyFile) and the agent reads back, beneath a base directory.
    pub files: Arc<dyn FileTree>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("cgroups", &self.cgroups.version())
            .finish_non_exhaustive()
    }
}
