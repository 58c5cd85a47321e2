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

/// Listens on the agent's addresses.
pub trait Transport: Send + Sync {
    /// Starts listening on `addr` and returns the stream of accepted connections.
    ///
    /// Whatever the listener creates (a socket file) is removed when the stream is dropped.
    fn listen(&self, addr: &ServerAddr) -> io::Result<Incoming>;

    /// Connects out to `addr` (the trace collector on the host).
    fn dial(&self, addr: &ServerAddr) -> BoxFuture<'static, io::Result<Box<dyn Connection>>>;
}
