//! [`NetlinkUevents`]: the [`UeventSource`] seam on a `NETLINK_KOBJECT_UEVENT` socket.

use std::io;

use async_trait::async_trait;
use netlink_sys::protocols::NETLINK_KOBJECT_UEVENT;
use netlink_sys::{Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::host::UeventSource;

/// The kernel's uevent multicast group (udev re-broadcasts on group 2).
const KERNEL_GROUP: u32 = 1;
/// Receive buffer asked for, so bursts (a hot-plugged disk, many CPUs) are not dropped.
const RCVBUF_BYTES: usize = 16 * 1024 * 1024;
/// Largest datagram accepted; the kernel's limit is 2048 bytes of variables plus the header.
const MAX_DATAGRAM: usize = 16 * 1024;

/// The real [`UeventSource`]: a netlink socket bound to the kernel's uevent group.
///
/// Only datagrams from the kernel (sender port id 0) are returned; anything a user-space process
/// sends to the group is dropped. The socket belongs to the network namespace of the thread that
/// creates it, which matters for `net` events (the kernel sends those only to listeners in the
/// device's namespace).
#[derive(Debug)]
pub struct NetlinkUevents {
    socket: AsyncFd<Socket>,
}

impl NetlinkUevents {
    /// Opens and binds the socket. Must be called inside a tokio runtime.
    pub fn new() -> io::Result<Self> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let mut socket = Socket::new(NETLINK_KOBJECT_UEVENT)?;
        socket.set_non_blocking(true)?;
        set_rcvbuf(&socket);
        // Port id 0: the kernel picks one.
        socket.bind(&SocketAddr::new(0, KERNEL_GROUP))?;
        // SAFETY: the socket's descriptor is owned by the `AsyncFd` for its whole life; nothing
        // closes or replaces it meanwhile.
        let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(NetlinkUevents { socket })
    }

    /// One non-blocking recvfrom(2): the datagram if the kernel sent it, `None` if it was dropped.
    fn recv_now(&self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = Vec::with_capacity(MAX_DATAGRAM);
        // MSG_TRUNC makes the kernel report the full length without writing past `buf`.
        let (n, from) = self.socket.get_ref().recv_from(&mut buf, libc::MSG_TRUNC)?;
        if from.port_number() != 0 {
            tracing::debug!(
                port = from.port_number(),
                "dropped a uevent datagram not sent by the kernel"
            );
            return Ok(None);
        }
        if n > MAX_DATAGRAM {
            tracing::warn!(len = n, "uevent datagram too large; dropped");
            return Ok(None);
        }
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(buf))
    }
}

/// Asks for a large receive buffer: SO_RCVBUFFORCE (needs CAP_NET_ADMIN, ignores rmem_max),
/// else SO_RCVBUF. Failure is logged, not fatal.
fn set_rcvbuf(socket: &Socket) {
    if setsockopt(socket, sockopt::RcvBufForce, &RCVBUF_BYTES).is_ok() {
        return;
    }
    if let Err(e) = socket.set_rx_buf_sz(RCVBUF_BYTES) {
        tracing::warn!(error = %e, "cannot enlarge the uevent socket buffer");
    }
}

#[async_trait]
impl UeventSource for NetlinkUevents {
    async fn recv(&self) -> io::Result<Vec<u8>> {
        loop {
            let mut guard = self.socket.readable().await?;
            match guard.try_io(|_| self.recv_now()) {
                Ok(Ok(Some(data))) => return Ok(data),
                Ok(Ok(None)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                // ENOBUFS (the kernel dropped events while the buffer was full) is returned too:
                // the caller decides what lost events mean; the socket stays usable.
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "uevent_tests.rs"]
mod tests;
