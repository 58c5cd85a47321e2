//! [`LinuxTransport`]: the [`Transport`] seam on vsock and unix sockets.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{
    SocketAddr, UnixListener as StdUnixListener, UnixStream as StdUnixStream,
};
use std::path::{Path, PathBuf};
use std::task::Poll;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::net::{UnixListener, UnixStream};
use tokio_vsock::{VsockAddr, VsockListener, VsockStream};

use crate::host::{Accepted, Connection, Incoming, IncomingPeers, ServerAddr, Transport};

/// The real [`Transport`]: vsock (`vsock://CID:PORT`), unix socket files (`unix:///path`) and
/// abstract unix sockets (`unix://@name`).
///
/// `listen` must be called inside a tokio runtime; the returned stream is driven by it.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxTransport;

impl LinuxTransport {
    /// A transport on the real kernel.
    pub fn new() -> Self {
        LinuxTransport
    }
}

impl Transport for LinuxTransport {
    fn listen(&self, addr: &ServerAddr) -> io::Result<Incoming> {
        // Binding registers the socket with the runtime's reactor, which panics without one.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        tracing::info!(%addr, "listening");
        match addr {
            ServerAddr::Vsock { cid, port } => listen_vsock(*cid, *port),
            ServerAddr::Unix(path) => listen_unix_path(path),
            ServerAddr::UnixAbstract(name) => listen_abstract(name),
        }
    }

    /// On vsock the peer's port is the host-side port of the connection; unix sockets report
    /// none.
    fn listen_peers(&self, addr: &ServerAddr) -> io::Result<IncomingPeers> {
        let ServerAddr::Vsock { cid, port } = addr else {
            let incoming = self.listen(addr)?;
            return Ok(incoming
                .map(|r| {
                    r.map(|conn| Accepted {
                        peer_port: None,
                        conn,
                    })
                })
                .boxed());
        };
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        tracing::info!(%addr, "listening");
        let listener = VsockListener::bind(VsockAddr::new(*cid, *port))?;
        let incoming = futures::stream::poll_fn(move |cx| {
            poll_from_host(&listener, cx).map(|res| {
                Some(res.map(|(stream, peer)| Accepted {
                    peer_port: Some(peer.port()),
                    conn: Box::new(stream),
                }))
            })
        });
        Ok(incoming.boxed())
    }

    fn dial(&self, addr: &ServerAddr) -> BoxFuture<'static, io::Result<Box<dyn Connection>>> {
        let addr = addr.clone();
        Box::pin(async move {
            let conn: Box<dyn Connection> = match addr {
                ServerAddr::Vsock { cid, port } => {
                    Box::new(VsockStream::connect(VsockAddr::new(cid, port)).await?)
                }
                ServerAddr::Unix(path) => Box::new(UnixStream::connect(path).await?),
                ServerAddr::UnixAbstract(name) => {
                    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
                    let std = StdUnixStream::connect_addr(&addr)?;
                    std.set_nonblocking(true)?;
                    Box::new(UnixStream::from_std(std)?)
                }
            };
            Ok(conn)
        })
    }
}

fn listen_vsock(cid: u32, port: u32) -> io::Result<Incoming> {
    let listener = VsockListener::bind(VsockAddr::new(cid, port))?;
    let incoming = futures::stream::poll_fn(move |cx| {
        poll_from_host(&listener, cx)
            .map(|res| Some(res.map(|(stream, _peer)| Box::new(stream) as Box<dyn Connection>)))
    });
    Ok(incoming.boxed())
}

/// `VMADDR_CID_HOST`: the host, as every guest sees it.
const CID_HOST: u32 = 2;

/// Whether a vsock connection from `cid` may be served. Only the host's are: vsock is not
/// namespaced, so with a loopback transport in the guest kernel a container could otherwise
/// reach the agent's ports (the API, the log, a debug console's root shell) from CID 1
/// (`VMADDR_CID_LOCAL`) or the guest's own CID.
fn from_host(cid: u32) -> bool {
    cid == CID_HOST
}

/// The next accepted connection from the host; any other is closed at once (and logged).
fn poll_from_host(
    listener: &VsockListener,
    cx: &mut std::task::Context<'_>,
) -> Poll<io::Result<(VsockStream, VsockAddr)>> {
    loop {
        match listener.poll_accept(cx) {
            Poll::Ready(Ok((stream, peer))) if !from_host(peer.cid()) => {
                tracing::warn!(
                    cid = peer.cid(),
                    port = peer.port(),
                    "vsock connection not from the host refused"
                );
                drop(stream);
            }
            other => return other,
        }
    }
}

fn listen_unix_path(path: &Path) -> io::Result<Incoming> {
    remove_stale_socket(path)?;
    let listener = UnixListener::bind(path)?;
    let guard = SocketFileGuard(path.to_owned());
    Ok(unix_incoming(listener, Some(guard)))
}

fn listen_abstract(name: &str) -> io::Result<Incoming> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let std_listener = StdUnixListener::bind_addr(&addr)?;
    std_listener.set_nonblocking(true)?;
    Ok(unix_incoming(UnixListener::from_std(std_listener)?, None))
}

fn unix_incoming(listener: UnixListener, guard: Option<SocketFileGuard>) -> Incoming {
    let incoming = futures::stream::poll_fn(move |cx| {
        // The guard lives as long as the stream, and removes the socket file with it.
        let _keep = &guard;
        match listener.poll_accept(cx) {
            Poll::Ready(res) => Poll::Ready(Some(
                res.map(|(stream, _peer)| Box::new(stream) as Box<dyn Connection>),
            )),
            Poll::Pending => Poll::Pending,
        }
    });
    incoming.boxed()
}

/// Removes a socket file left by an earlier run. Anything else at `path` is left alone (bind
/// then fails with `EADDRINUSE`).
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            tracing::debug!(path = %path.display(), "removing a stale socket file");
            std::fs::remove_file(path)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the socket file it names when dropped.
#[derive(Debug)]
struct SocketFileGuard(PathBuf);

impl Drop for SocketFileGuard {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => tracing::debug!(path = %self.0.display(), "removed the socket file"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.0.display(), error = %e, "cannot remove the socket file");
            }
        }
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
