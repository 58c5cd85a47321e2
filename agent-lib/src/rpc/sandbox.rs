//! CreateSandbox, DestroySandbox and GetOOMEvent.

use agent_protos::agent;
use agent_protos::empty::Empty;
use ttrpc::Code;

use super::decode_storages;
use super::error::status;
use crate::Agent;
use crate::sandbox::{KernelModule, SandboxRequest};

/// CreateSandbox: decode, set the sandbox up.
pub(crate) async fn create_sandbox(
    agent: &Agent,
    req: agent::CreateSandboxRequest,
) -> ttrpc::Result<Empty> {
    let request = SandboxRequest {
        id: req.sandbox_id,
        hostname: req.hostname,
        dns: req.dns,
        storages: decode_storages(&req.storages),
        guest_hook_path: (!req.guest_hook_path.is_empty()).then(|| req.guest_hook_path.into()),
        kernel_modules: req
            .kernel_modules
            .into_iter()
            .map(|m| KernelModule {
                name: m.name,
                parameters: m.parameters,
            })
            .collect(),
    };
    agent.sandbox().create(request).await?;
    Ok(Empty::new())
}

/// DestroySandbox: remove every container, end GetOOMEvent, undo the sandbox, stop the agent.
pub(crate) async fn destroy_sandbox(agent: &Agent) -> ttrpc::Result<Empty> {
    let containers = agent.containers().remove_all().await;
    agent.containers().oom().close();
    let sandbox = agent.sandbox().destroy().await;
    agent.request_stop();
    containers?;
    sandbox?;
    Ok(Empty::new())
}

/// GetOOMEvent: the next container with an OOM kill; fails once the sandbox is destroyed.
pub(crate) async fn get_oom_event(agent: &Agent) -> ttrpc::Result<agent::OOMEvent> {
    match agent.containers().oom().next().await {
        Some(container_id) => Ok(agent::OOMEvent {
            container_id,
            ..Default::default()
        }),
        None => Err(status(
            Code::INTERNAL,
            "the sandbox is destroyed: no more OOM events",
        )),
    }
}
