//! Real Linux implementations of the host seams.
//!
//! One file per seam: [`LinuxMounter`] (mount(2) and mountinfo), [`RtNetlink`] (rtnetlink),
//! [`NetlinkUevents`] (the kernel's uevent socket), [`LinuxTransport`] (vsock and unix
//! sockets), [`LinuxSysfs`] (`/sys`, `/dev`, `/proc` under a root directory), [`LinuxCgroups`]
//! (cgroupfs), [`LinuxFileTree`] (openat2 beneath directory fds) and [`LinuxLauncher`] (processes, with the [`Reaper`] and pseudo terminals).

mod cgroups;
mod container;
mod core_dumps;
mod file_tree;
mod launcher;
mod mounter;
mod netlink;
mod oom;
pub mod pty;
mod reaper;
mod shared_mount;
mod sysfs;
mod system;
mod transport;
mod uevent;

#[cfg(test)]
mod test_support;

pub use cgroups::{LinuxCgroups, detect_version};
pub use container::{HELPER_ARG, SetupError, run_if_helper};
pub use core_dumps::set_core_dumps;
pub use file_tree::LinuxFileTree;
pub use launcher::LinuxLauncher;
pub use mounter::LinuxMounter;
pub use netlink::RtNetlink;
pub use reaper::{ReapMode, Reaper, set_child_subreaper};
pub use sysfs::LinuxSysfs;
pub use system::{LinuxSystem, raise_nofile_limit};
pub use transport::LinuxTransport;
pub use uevent::NetlinkUevents;
