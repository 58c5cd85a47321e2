//! The ttrpc edge of the agent: `grpc.AgentService` and `grpc.Health` over any [`Transport`].
//!
//! Protobuf types stop here: handlers decode requests into domain types, call the subsystems
//! and encode the answers. Errors become ttrpc statuses in [`error`] only.
//!
//! [`Transport`]: crate::host::Transport

mod accept_backoff;
mod agent_service;
mod container;
mod error;
mod frame_guard;
mod gate;
mod guest;
mod guest_hotplug;
mod health;
pub mod network;
mod observe;
pub mod oci;
mod process;
mod sandbox;
mod stats;
mod stdio;
mod storage;
mod wrap;

use std::io;
use std::sync::Arc;

use agent_protos::agent_ttrpc::create_agent_service;
use agent_protos::health_ttrpc::create_health;
use futures::TryStreamExt;
use ttrpc::r#async::Server;
use ttrpc::r#async::transport::Listener;

pub use agent_service::AgentRpc;
pub use frame_guard::FrameGuard;
use gate::gate;
pub use health::{AGENT_VERSION, API_VERSION, HealthService};
use observe::observe;
pub use observe::snake_case;
pub use storage::{decode_storage, decode_storages};

use crate::Agent;
use crate::host::ServerAddr;

/// A running ttrpc server.
pub struct RpcServer {
    server: Server,
}

impl std::fmt::Debug for RpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServer").finish_non_exhaustive()
    }
}

impl RpcServer {
    /// Stops accepting, closes every connection and waits for the handlers to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.server.shutdown().await.map_err(ttrpc_io_error)
    }
}

/// Starts serving `agent` on `addr` through the agent's transport.
///
/// Returns once the listener is bound; connections are served on background tasks. Health
/// answers at once; AgentService calls wait for the agent's [`Readiness`]. A connection that
/// sends garbage is closed without affecting the others; a failed accept (descriptors
/// exhausted) pauses the accepting, never the connections already open.
///
/// [`Readiness`]: crate::ready::Readiness
pub async fn serve(agent: Arc<Agent>, addr: &ServerAddr) -> io::Result<RpcServer> {
    let incoming = accept_backoff::with_backoff(agent.host().transport.listen(addr)?);
    let listener = Listener::new(incoming.map_ok(FrameGuard::new));
    let mut server = Server::new()
        .add_listener(listener)
        .register_service(observe(gate(
            create_agent_service(Arc::new(AgentRpc::new(agent.clone()))),
            agent.readiness(),
        )))
        .register_service(observe(create_health(Arc::new(HealthService))));
    server.start().await.map_err(ttrpc_io_error)?;
    tracing::info!(%addr, "ttRPC server started");
    Ok(RpcServer { server })
}

fn ttrpc_io_error(err: ttrpc::Error) -> io::Error {
    match err {
        ttrpc::Error::Socket(msg) => io::Error::other(msg),
        ttrpc::Error::Nix(errno) => io::Error::from_raw_os_error(errno as i32),
        other => io::Error::other(other.to_string()),
    }
}
