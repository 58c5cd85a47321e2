//! The floor of an RPC round trip: a ttrpc server whose `grpc.Health/Check` does nothing.

use std::io;
use std::path::Path;
use std::sync::Arc;

use agent_protos::health::{CheckRequest, HealthCheckResponse};
use agent_protos::health_ttrpc::{Health, create_health};
use async_trait::async_trait;
use ttrpc::r#async::{Server, TtrpcContext};

struct Echo;

#[async_trait]
impl Health for Echo {
    async fn check(
        &self,
        _ctx: &TtrpcContext,
        _req: CheckRequest,
    ) -> ttrpc::Result<HealthCheckResponse> {
        Ok(HealthCheckResponse::new())
    }
}

/// A bare ttrpc server answering `Check` with an empty reply: same framing and codec as the
/// agent, no agent in between.
pub struct EchoServer {
    server: Server,
}

impl std::fmt::Debug for EchoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoServer").finish_non_exhaustive()
    }
}

impl EchoServer {
    /// Serves on the unix socket `path`; call inside a tokio runtime.
    pub async fn start(path: &Path) -> io::Result<Self> {
        let addr = format!("unix://{}", path.display());
        let mut server = Server::new()
            .bind(&addr)
            .map_err(|e| io::Error::other(e.to_string()))?
            .register_service(create_health(Arc::new(Echo)));
        server
            .start()
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(EchoServer { server })
    }

    /// Stops serving.
    pub async fn stop(mut self) {
        let _ = self.server.shutdown().await;
    }
}
