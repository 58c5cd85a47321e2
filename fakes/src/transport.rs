//! `FakeTransport`: listeners and connections over in-memory duplex streams.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;
use kata_agent::host::{
    Accepted as Peer, Connection, Incoming, IncomingPeers, ServerAddr, Transport,
};
use nix::errno::Errno;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use crate::faults::{Faults, Op, errno, lock};

/// Bytes each direction of a connection buffers before the writer waits.
pub const DEFAULT_BUFFER: usize = 64 * 1024;

#[derive(Debug)]
struct Listener {
    /// Tells this registration from a later one on the same address.
    id: u64,
    /// Server halves, with the peer port the client came from (vsock-like) if any.
    tx: mpsc::UnboundedSender<(Option<u32>, DuplexStream)>,
}

#[derive(Debug, Default)]
struct Registry {
    listeners: HashMap<ServerAddr, Listener>,
    next_id: u64,
}

/// Listeners keyed by address; connections are [`tokio::io::duplex`] pairs.
///
/// [`Transport::listen`] registers the address (`EADDRINUSE` if taken) and returns the stream of
/// accepted connections; dropping that stream unregisters it. [`FakeTransport::connect`] plays
/// the host side: it queues the server half for the listener, like a listen backlog, and
/// returns the client half, or fails with `ECONNREFUSED` when nobody listens.
#[derive(Debug)]
pub struct FakeTransport {
    faults: Faults,
    buffer: usize,
    registry: Arc<Mutex<Registry>>,
}

impl FakeTransport {
    /// A transport with nobody listening, buffering [`DEFAULT_BUFFER`] bytes per direction.
    pub fn new(faults: Faults) -> Self {
        Self::with_buffer(faults, DEFAULT_BUFFER)
    }

    /// A transport whose connections buffer `buffer` bytes per direction.
    pub fn with_buffer(faults: Faults, buffer: usize) -> Self {
        FakeTransport {
            faults,
            buffer,
            registry: Arc::default(),
        }
    }

    /// Connects to `addr` as the host would (not counted as a call; never faulted).
    pub fn connect(&self, addr: &ServerAddr) -> io::Result<DuplexStream> {
        self.connect_with(addr, None)
    }

    /// Connects to `addr` from host port `peer_port`, as over vsock:
    /// [`Transport::listen_peers`] reports that port with the connection.
    pub fn connect_from(&self, addr: &ServerAddr, peer_port: u32) -> io::Result<DuplexStream> {
        self.connect_with(addr, Some(peer_port))
    }

    fn connect_with(&self, addr: &ServerAddr, peer: Option<u32>) -> io::Result<DuplexStream> {
        let registry = lock(&self.registry);
        let listener = registry
            .listeners
            .get(addr)
            .ok_or_else(|| errno(Errno::ECONNREFUSED))?;
        let (client, server) = tokio::io::duplex(self.buffer);
        listener
            .tx
            .send((peer, server))
            .map_err(|_| errno(Errno::ECONNREFUSED))?;
        Ok(client)
    }

    /// Whether something listens on `addr`.
    pub fn is_listening(&self, addr: &ServerAddr) -> bool {
        lock(&self.registry).listeners.contains_key(addr)
    }

    /// Every address listened on, sorted by their text form.
    pub fn listening(&self) -> Vec<ServerAddr> {
        let mut addrs: Vec<ServerAddr> = lock(&self.registry).listeners.keys().cloned().collect();
        addrs.sort_by_key(ToString::to_string);
        addrs
    }
}

impl Transport for FakeTransport {
    fn listen(&self, addr: &ServerAddr) -> io::Result<Incoming> {
        use futures::StreamExt;
        Ok(self.register(addr)?.map(|r| r.map(|p| p.conn)).boxed())
    }

    /// Reports the port of connections made with [`FakeTransport::connect_from`].
    fn listen_peers(&self, addr: &ServerAddr) -> io::Result<IncomingPeers> {
        Ok(Box::pin(self.register(addr)?))
    }

    /// Connects to a listener of this transport (a test playing the host listens with
    /// [`Transport::listen`]); `ECONNREFUSED` when nobody listens.
    fn dial(&self, addr: &ServerAddr) -> BoxFuture<'static, io::Result<Box<dyn Connection>>> {
        let result = self.dial_now(addr);
        Box::pin(async move { result })
    }
}

impl FakeTransport {
    fn register(&self, addr: &ServerAddr) -> io::Result<Accepted> {
        self.faults.check(Op::Listen)?;
        let mut registry = lock(&self.registry);
        if registry.listeners.contains_key(addr) {
            return Err(errno(Errno::EADDRINUSE));
        }
        let id = registry.next_id;
        registry.next_id += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        registry.listeners.insert(addr.clone(), Listener { id, tx });
        Ok(Accepted {
            rx,
            addr: addr.clone(),
            id,
            registry: Arc::clone(&self.registry),
        })
    }

    fn dial_now(&self, addr: &ServerAddr) -> io::Result<Box<dyn Connection>> {
        self.faults.check(Op::Dial)?;
        Ok(Box::new(self.connect(addr)?))
    }
}

/// The stream [`Transport::listen`] returns; unregisters its address when dropped.
struct Accepted {
    rx: mpsc::UnboundedReceiver<(Option<u32>, DuplexStream)>,
    addr: ServerAddr,
    id: u64,
    registry: Arc<Mutex<Registry>>,
}

impl Stream for Accepted {
    type Item = io::Result<Peer>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|conn| {
            conn.map(|(peer_port, c)| {
                Ok(Peer {
                    peer_port,
                    conn: Box::new(c),
                })
            })
        })
    }
}

impl Drop for Accepted {
    fn drop(&mut self) {
        let mut registry = lock(&self.registry);
        if registry
            .listeners
            .get(&self.addr)
            .is_some_and(|l| l.id == self.id)
        {
            registry.listeners.remove(&self.addr);
        }
    }
}
