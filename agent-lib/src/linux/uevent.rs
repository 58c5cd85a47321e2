//! [`NetlinkUevents`]: the [`UeventSource`] seam on a `NETLINK_KOBJECT_UEVENT` socket.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use async_trait::async_trait;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::host::UeventSource;

/// The kernel's uevent multicast group (udev re-broadcasts on group 2).
const KERNEL_GROUP: u32 = 1;
/// Receive buffer asked for, so bursts (a hot-plugged disk, many CPUs) are not dropped.
const RCVBUF_BYTES: libc::c_int = 16 * 1024 * 1024;
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
    fd: AsyncFd<OwnedFd>,
}

impl NetlinkUevents {
    /// Opens and binds the socket. Must be called inside a tokio runtime.
    pub fn new() -> io::Result<Self> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_KOBJECT_UEVENT,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        set_rcvbuf(&fd);

        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_pid = 0; // let the kernel pick a port id
        addr.nl_groups = KERNEL_GROUP;
        // SAFETY: `addr` is a valid sockaddr_nl and the length matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                socklen::<libc::sockaddr_nl>(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is an open descriptor owned by the `AsyncFd` for its whole life; nothing
        // closes or replaces it meanwhile.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(NetlinkUevents { fd })
    }

    /// One non-blocking recvfrom(2): the datagram if the kernel sent it, `None` if it was dropped.
    fn recv_now(&self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut from: libc::sockaddr_nl = unsafe { mem::zeroed() };
        let mut from_len = socklen::<libc::sockaddr_nl>();
        // SAFETY: `buf` and `from` are valid for writes of the lengths passed; MSG_TRUNC makes
        // the kernel report the full length without writing past `buf`.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&raw mut from).cast::<libc::sockaddr>(),
                &mut from_len,
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        if from.nl_pid != 0 {
            tracing::debug!(
                port = from.nl_pid,
                "dropped a uevent datagram not sent by the kernel"
            );
            return Ok(None);
        }
        if n > buf.len() {
            tracing::warn!(len = n, "uevent datagram too large; dropped");
            return Ok(None);
        }
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(buf))
    }
}

/// Asks for a large receive buffer: SO_RCVBUFFORCE (needs CAP_NET_ADMIN, ignores rmem_max),
/// else SO_RCVBUF. Failure is logged, not fatal.
fn set_rcvbuf(fd: &OwnedFd) {
    let size: libc::c_int = RCVBUF_BYTES;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: the option value is a c_int and the length matches it.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const size).cast(),
                socklen::<libc::c_int>(),
            )
        };
        if rc == 0 {
            return;
        }
    }
    tracing::warn!(error = %io::Error::last_os_error(), "cannot enlarge the uevent socket buffer");
}

fn socklen<T>() -> libc::socklen_t {
    // Socket address and option types are a few bytes long.
    mem::size_of::<T>() as libc::socklen_t
}

#[async_trait]
impl UeventSource for NetlinkUevents {
    async fn recv(&self) -> io::Result<Vec<u8>> {
        loop {
            let mut guard = self.fd.readable().await?;
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
