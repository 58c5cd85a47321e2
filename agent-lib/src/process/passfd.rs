//! passfd I/O (`agent.passfd_listener_port`): the host connects one stream per stdio stream
//! of a process to the agent's passfd port before CreateContainer or ExecProcess, and names
//! them in the request by its own side's port (`stdin_port`, `stdout_port`, `stderr_port`).
//! The agent keeps the accepted streams by that peer port until a request takes them, and
//! splices them to the process's pipes or pty, so output needs no ReadStdout round trips.
//!
//! On vsock the peer port is the connection's host-side port, as in Kata. Unix sockets have
//! none (the agent outside a VM, tests); there the client's first bytes must be the handshake
//! [`HANDSHAKE`] describes, a convention of this agent: Kata has no passfd over unix sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::host::{Accepted, Connection, ServerAddr, Transport};

/// Tries to find a stream a request names (Kata: 3).
pub const TAKE_TRIES: u32 = 3;
/// The pause between two tries (Kata: 100 ms).
pub const TAKE_INTERVAL: Duration = Duration::from_millis(100);
/// How long an accepted stream waits for a request to take it before it is closed (a host
/// that died between connecting and asking must not leave its streams open for ever).
pub const UNCLAIMED_AFTER: Duration = Duration::from_secs(60);
/// How long a connection without a known peer port has to send its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The handshake of a connection whose transport reports no peer port (unix sockets): the
/// client sends its port number in decimal followed by a newline, `"5001\n"`, before any data;
/// the agent answers nothing. At most this many bytes, newline included.
pub const HANDSHAKE: usize = 11;

/// Why the streams a request names cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum PassfdError {
    /// The request names a port but the agent has no passfd listener.
    #[error("{field} {port} given, but agent.passfd_listener_port is not set")]
    Disabled {
        /// `stdin_port`, `stdout_port` or `stderr_port`.
        field: &'static str,
        /// The port.
        port: u32,
    },
    /// No stream from that port arrived in time.
    #[error(
        "no passfd stream from host port {port} ({field}) after {TAKE_TRIES} tries {TAKE_INTERVAL:?} apart"
    )]
    Missing {
        /// `stdin_port`, `stdout_port` or `stderr_port`.
        field: &'static str,
        /// The port.
        port: u32,
    },
}

/// The `std*_port` fields of a request; 0 is not used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdioPorts {
    /// The host port of the stdin stream.
    pub stdin: u32,
    /// The host port of the stdout stream.
    pub stdout: u32,
    /// The host port of the stderr stream.
    pub stderr: u32,
}

impl StdioPorts {
    /// Whether any port is given.
    pub fn any(&self) -> bool {
        self.stdin != 0 || self.stdout != 0 || self.stderr != 0
    }

    fn fields(&self) -> [(&'static str, u32); 3] {
        [
            ("stdin_port", self.stdin),
            ("stdout_port", self.stdout),
            ("stderr_port", self.stderr),
        ]
    }
}

/// The host's streams of one process.
#[derive(Default)]
pub struct PassfdIo {
    /// Read by the agent into the process's stdin.
    pub stdin: Option<Box<dyn Connection>>,
    /// Written with the process's stdout (for a tty, the terminal's output).
    pub stdout: Option<Box<dyn Connection>>,
    /// Written with the process's stderr.
    pub stderr: Option<Box<dyn Connection>>,
}

impl std::fmt::Debug for PassfdIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassfdIo")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

/// An accepted stream and when it came.
struct Waiting {
    since: Instant,
    conn: Box<dyn Connection>,
}

/// The accepted streams not yet taken, by peer port.
#[derive(Default)]
pub struct PassfdStreams {
    streams: Mutex<HashMap<u32, Waiting>>,
}

impl std::fmt::Debug for PassfdStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ports: Vec<u32> = self.lock().keys().copied().collect();
        ports.sort_unstable();
        f.debug_struct("PassfdStreams")
            .field("waiting", &ports)
            .finish()
    }
}

impl PassfdStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Waiting>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ports of the streams waiting to be taken, sorted.
    pub fn waiting(&self) -> Vec<u32> {
        let mut ports: Vec<u32> = self.lock().keys().copied().collect();
        ports.sort_unstable();
        ports
    }

    /// Listens on `addr` and keeps every accepted stream under its peer port (a later stream
    /// from the same port replaces an earlier one, as in Kata); streams unclaimed for
    /// [`UNCLAIMED_AFTER`] are closed. Runs until the listener fails.
    pub async fn serve(self: Arc<Self>, transport: Arc<dyn Transport>, addr: ServerAddr) {
        let mut incoming = match transport.listen_peers(&addr) {
            Ok(incoming) => incoming,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "passfd listener unavailable");
                return;
            }
        };
        tracing::info!(%addr, "passfd listener started");
        let mut sweep = tokio::time::interval(UNCLAIMED_AFTER / 2);
        loop {
            let accepted = tokio::select! {
                accepted = incoming.next() => match accepted {
                    Some(accepted) => accepted,
                    None => return,
                },
                _ = sweep.tick() => {
                    self.close_unclaimed();
                    continue;
                }
            };
            match accepted {
                Ok(Accepted {
                    peer_port: Some(port),
                    conn,
                }) => self.insert(port, conn),
                Ok(Accepted {
                    peer_port: None,
                    conn,
                }) => {
                    let this = self.clone();
                    tokio::spawn(async move { this.handshake(conn).await });
                }
                Err(e) => tracing::warn!(error = %e, "passfd accept failed"),
            }
        }
    }

    fn insert(&self, port: u32, conn: Box<dyn Connection>) {
        tracing::info!(port, "passfd stream accepted");
        let waiting = Waiting {
            since: Instant::now(),
            conn,
        };
        if self.lock().insert(port, waiting).is_some() {
            tracing::warn!(
                port,
                "a passfd stream from the same port replaced an earlier one"
            );
        }
    }

    /// Closes the streams unclaimed for [`UNCLAIMED_AFTER`] or more.
    fn close_unclaimed(&self) {
        let now = Instant::now();
        self.lock().retain(|port, w| {
            let keep = now.duration_since(w.since) < UNCLAIMED_AFTER;
            if !keep {
                tracing::warn!(port, "passfd stream never claimed; closed");
            }
            keep
        });
    }

    async fn handshake(&self, mut conn: Box<dyn Connection>) {
        let read = async {
            let mut line = Vec::new();
            loop {
                let byte = conn.read_u8().await.ok()?;
                if byte == b'\n' {
                    break;
                }
                line.push(byte);
                if line.len() >= HANDSHAKE {
                    return None;
                }
            }
            let text = std::str::from_utf8(&line).ok()?;
            text.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| text.parse::<u32>().ok())
                .flatten()
                .filter(|p| *p != 0)
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, read).await {
            Ok(Some(port)) => self.insert(port, conn),
            _ => tracing::warn!("passfd connection without a valid port line dropped"),
        }
    }

    /// Takes the stream from `port`, trying [`TAKE_TRIES`] times [`TAKE_INTERVAL`] apart.
    async fn take(
        &self,
        field: &'static str,
        port: u32,
    ) -> Result<Box<dyn Connection>, PassfdError> {
        for attempt in 1..=TAKE_TRIES {
            if let Some(waiting) = self.lock().remove(&port) {
                return Ok(waiting.conn);
            }
            if attempt < TAKE_TRIES {
                tokio::time::sleep(TAKE_INTERVAL).await;
            }
        }
        Err(PassfdError::Missing { field, port })
    }

    /// Takes the streams `ports` names. On error, those already taken are closed.
    pub async fn take_all(&self, ports: StdioPorts) -> Result<PassfdIo, PassfdError> {
        let mut io = PassfdIo::default();
        for (field, port) in ports.fields() {
            if port == 0 {
                continue;
            }
            let conn = self.take(field, port).await?;
            match field {
                "stdin_port" => io.stdin = Some(conn),
                "stdout_port" => io.stdout = Some(conn),
                _ => io.stderr = Some(conn),
            }
        }
        Ok(io)
    }
}

/// The streams a request names: none when it names no port, refused when it names some but
/// `streams` is `None` (no passfd listener configured).
pub async fn take_streams(
    streams: Option<&PassfdStreams>,
    ports: StdioPorts,
) -> Result<Option<PassfdIo>, PassfdError> {
    if !ports.any() {
        return Ok(None);
    }
    let Some(streams) = streams else {
        let (field, port) = ports
            .fields()
            .into_iter()
            .find(|(_, p)| *p != 0)
            .unwrap_or(("stdin_port", 0));
        return Err(PassfdError::Disabled { field, port });
    };
    streams.take_all(ports).await.map(Some)
}
