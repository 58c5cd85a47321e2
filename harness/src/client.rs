//! A ttrpc client for `grpc.AgentService` and `grpc.Health`, as a host runtime would use.

use std::time::Duration;

use agent_protos::agent_ttrpc::AgentServiceClient;
use agent_protos::health_ttrpc::HealthClient;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use ttrpc::r#async::Client;
use ttrpc::r#async::transport::Socket;

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address could not be reached.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: ttrpc::Error,
    },
    /// The hybrid-vsock socket could not be opened.
    #[error("cannot open hybrid vsock socket {path}")]
    HybridSocket {
        /// The unix socket of the VMM.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The VMM refused the `CONNECT <port>` handshake.
    #[error("hybrid vsock handshake for port {port} failed: {reply:?}")]
    Handshake {
        /// The guest port.
        port: u32,
        /// What the VMM answered.
        reply: String,
    },
    /// The address is not one this client understands.
    #[error("unsupported hybrid vsock address {0:?}: expected unix:///path")]
    HybridAddress(String),
}

/// A connection to an agent, with typed clients for both services.
#[derive(Clone)]
pub struct AgentClient {
    raw: Client,
    /// `grpc.AgentService`.
    pub agent: AgentServiceClient,
    /// `grpc.Health`.
    pub health: HealthClient,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient").finish_non_exhaustive()
    }
}

impl AgentClient {
    /// Connects to `addr`: `unix:///path`, `unix://@name` or `vsock://CID:PORT`.
    pub async fn connect(addr: &str) -> Result<Self, ConnectError> {
        let raw = Client::connect(addr)
            .await
            .map_err(|source| ConnectError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        Ok(Self::from_client(raw))
    }

    /// Connects through a VMM's hybrid vsock unix socket (Firecracker, Cloud Hypervisor and
    /// vhost-device-vsock): writes `CONNECT <port>\n` and expects `OK <hostport>\n`.
    pub async fn connect_hybrid_vsock(addr: &str, port: u32) -> Result<Self, ConnectError> {
        Ok(Self::from_stream(hybrid_vsock_stream(addr, port).await?))
    }

    /// A client over an already connected byte stream (e.g. an in-memory pipe to a fake).
    pub fn from_stream(stream: impl AsyncRead + AsyncWrite + Send + Sync + 'static) -> Self {
        Self::from_client(Client::new(Socket::new(stream)))
    }

    fn from_client(raw: Client) -> Self {
        AgentClient {
            agent: AgentServiceClient::new(raw.clone()),
            health: HealthClient::new(raw.clone()),
            raw,
        }
    }

    /// The untyped client, for calls by method name.
    pub fn raw(&self) -> &Client {
        &self.raw
    }
}

/// A byte stream to guest port `port` through a VMM's hybrid vsock unix socket `addr`
/// (`unix:///path`): writes `CONNECT <port>\n` and expects `OK <hostport>\n`.
pub async fn hybrid_vsock_stream(addr: &str, port: u32) -> Result<UnixStream, ConnectError> {
    let path = addr
        .strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| ConnectError::HybridAddress(addr.to_owned()))?;
    let mut stream =
        UnixStream::connect(path)
            .await
            .map_err(|source| ConnectError::HybridSocket {
                path: path.to_owned(),
                source,
            })?;
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .await
        .map_err(|source| ConnectError::HybridSocket {
            path: path.to_owned(),
            source,
        })?;
    let reply = read_line(&mut stream)
        .await
        .map_err(|source| ConnectError::HybridSocket {
            path: path.to_owned(),
            source,
        })?;
    if !reply.starts_with("OK ") {
        return Err(ConnectError::Handshake { port, reply });
    }
    Ok(stream)
}

/// Reads one `\n`-terminated line byte by byte, so nothing after it is consumed.
async fn read_line(stream: &mut UnixStream) -> std::io::Result<String> {
    let mut reader = BufReader::with_capacity(1, stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    Ok(line.trim_end().to_owned())
}

/// A ttrpc context with `timeout` (zero: none).
pub fn context(timeout: Duration) -> ttrpc::context::Context {
    ttrpc::context::with_timeout(i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX))
}

/// A ttrpc context without a deadline: waits and long polls last as long as they must.
pub fn ctx() -> ttrpc::context::Context {
    context(Duration::ZERO)
}
