//! The fakes' own semantics, one module per seam (cgroups, host, launcher, mounter, netlink,
//! sysfs, transport, uevents). One binary.

mod cgroups;
mod host;
mod launcher;
mod launcher_hold;
mod mounter;
mod netlink;
mod sysfs;
mod transport;
mod uevents;
