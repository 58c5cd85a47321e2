//! Real Linux implementations of the host seams.
//!
//! One file per seam: [`LinuxMounter`] (mount(2) and mountinfo), [`RtNetlink`] (rtnetlink),
//! [`NetlinkUevents`] (the kernel's uevent socket), [`LinuxTransport`] (vsock and unix
//! sockets), [`LinuxSysfs`] (`/sys`, `/dev`, `/proc` under a root directory), [`LinuxCgroups`]
//! (cgroupfs) and [`LinuxLauncher`] (processes, with the [`Reaper`] and pseudo terminals).

mod cgroups;
mod container;
mod launcher;
mod mounter;
mod netlink;
mod oom;
mod pty;
mod reaper;
mod sysfs;
mod system;
mod transport;
mod uevent;

#[cfg(test)]
mod test_support;

pub use cgroups::{LinuxCgroups, detect_version};
pub use container::{HELPER_ARG, SetupError, run_if_helper};
pub use launcher::LinuxLauncher;
pub use mounter::LinuxMounter;
pub use netlink::RtNetlink;
pub use reaper::{ReapMode, Reaper, set_child_subreaper};
pub use sysfs::LinuxSysfs;
pub use system::{LinuxSystem, raise_nofile_limit};
pub use transport::LinuxTransport;
pub use uevent::NetlinkUevents;
