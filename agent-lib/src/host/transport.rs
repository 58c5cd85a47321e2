//! The transport seam: where host connections come from.

use std::io;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite};

use super::ServerAddr;

/// A connected byte stream (vsock, unix socket, or an in-memory pipe).
pub trait Connection: AsyncRead + AsyncWrite + Send + Sync + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Connection for T {}

/// Accepted connections, in arrival order.
pub type Incoming = BoxStream<'static, io::Result<Box<dyn Connection>>>;

/// An accepted connection and, when the transport knows it, the peer's port (vsock: the
/// host-side port of the connection; unix sockets have none).
pub struct Accepted {
    /// The peer's port, if the transport reports one.
    pub peer_port: Option<u32>,
    /// The connection.
    pub conn: Box<dyn Connection>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("peer_port", &self.peer_port)
            .finish_non_exhaustive()
    }
}

/// Accepted connections with their peers' ports, in arrival order.
pub type IncomingPeers = BoxStream<'static, io::Result<Accepted>>;

/// Listens on the agent's addresses.
pub trait Transport: Send + Sync {
    /// Starts listening on `addr` and returns the stream of accepted connections.
    ///
    /// Whatever the listener creates (a socket file) is removed when the stream is dropped.
    fn listen(&self, addr: &ServerAddr) -> io::Result<Incoming>;

    /// Like [`Transport::listen`], with each peer's port where the transport knows it (the
    /// passfd listener matches host streams by it). By default no port is known.
    fn listen_peers(&self, addr: &ServerAddr) -> io::Result<IncomingPeers> {
        use futures::StreamExt;
        let incoming = self.listen(addr)?;
        Ok(incoming
            .map(|r| {
                r.map(|conn| Accepted {
                    peer_port: None,
                    conn,
                })
            })
            .boxed())
    }

    /// Connects out to `addr` (the trace collector on the host).
    fn dial(&self, addr: &ServerAddr) -> BoxFuture<'static, io::Result<Box<dyn Connection>>>;
}
