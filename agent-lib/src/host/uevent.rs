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
    /// Waits for the next datagram. An error ends the stream only if it is not `Interrupted`.
    async fn recv(&self) -> io::Result<Vec<u8>>;
}
