//! The `UeventSource` seam: the kernel's uevent stream.

use std::io;

use async_trait::async_trait;

/// The kernel's uevent multicast stream (NETLINK_KOBJECT_UEVENT, kernel group).
///
/// Yields raw datagrams exactly as the kernel sends them
/// (`ACTION@DEVPATH\0ACTION=add\0DEVPATH=...\0...`); parsing belongs to the device subsystem, so a
/// fake VMM's events take the same path as real ones.
#[async_trait]
pub trait UeventSource: Send + Sync {
    /// Waits for the next datagram.
    ///
    /// Errors are returned as they come and most are transient: `ENOBUFS` says the kernel
    /// dropped events because the receive buffer was full, and receiving again works. Only a
    /// source that is broken for good (a closed stream, `EBADF`...) never delivers again.
    async fn recv(&self) -> io::Result<Vec<u8>>;
}
