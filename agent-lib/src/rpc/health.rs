//! `grpc.Health`: liveness and version.

use agent_protos::health::health_check_response::ServingStatus;
use agent_protos::health::{CheckRequest, HealthCheckResponse, VersionCheckResponse};
use agent_protos::health_ttrpc::Health;
use async_trait::async_trait;
use ttrpc::r#async::TtrpcContext;

/// The agent's API version as Kata reports it (`grpc_version`).
pub const API_VERSION: &str = "0.0.1";

/// The agent's own version (`agent_version`).
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves `grpc.Health`. It holds no state: an agent that answers at all is serving.
#[derive(Debug, Default)]
pub struct HealthService;

#[async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _ctx: &TtrpcContext,
        _req: CheckRequest,
    ) -> ttrpc::Result<HealthCheckResponse> {
        let mut resp = HealthCheckResponse::new();
        resp.status = ServingStatus::SERVING.into();
        Ok(resp)
    }

    async fn version(
        &self,
        _ctx: &TtrpcContext,
        _req: CheckRequest,
    ) -> ttrpc::Result<VersionCheckResponse> {
        let mut resp = VersionCheckResponse::new();
        resp.grpc_version = API_VERSION.to_owned();
        resp.agent_version = AGENT_VERSION.to_owned();
        Ok(resp)
    }
}
