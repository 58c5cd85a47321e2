//! Real Linux implementations of the host seams.
//!
//! One file per seam: [`LinuxMounter`] (mount(2) and mountinfo), [`RtNetlink`] (rtnetlink),
//! [`NetlinkUevents`] (the kernel's uevent socket), [`LinuxTransport`] (vsock and unix
//! sockets) and [`LinuxSysfs`] (`/sys`, `/dev`, `/proc` under a root directory).

mod cgroups; // TEMP(launcher/cgroups helper)
mod launcher; // TEMP
mod mounter;
mod netlink;
mod pty; // TEMP
mod reaper; // TEMP
mod sysfs;
mod transport;
mod uevent;

#[cfg(test)]
mod test_support;

pub use cgroups::{LinuxCgroups, detect_version}; // TEMP
pub use launcher::LinuxLauncher; // TEMP
pub use mounter::LinuxMounter;
pub use netlink::RtNetlink;
pub use reaper::{ReapMode, Reaper, set_child_subreaper}; // TEMP
pub use sysfs::LinuxSysfs;
pub use transport::LinuxTransport;
pub use uevent::NetlinkUevents;
