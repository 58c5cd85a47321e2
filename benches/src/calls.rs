//! The RPC sequences the benches time, over any [`AgentClient`] (fake transport or unix
//! socket, agent on the fakes or on real Linux).

use agent_harness::{AgentClient, ctx};
use agent_protos::agent as pb;

use crate::requests;

/// `grpc.Health/Check`: the floor of every RPC sequence.
pub async fn check(client: &AgentClient) -> ttrpc::Result<()> {
    client.check().await
}

/// CreateSandbox (pod `pod`, id `sb`).
pub async fn create_sandbox(client: &AgentClient) -> ttrpc::Result<()> {
    client
        .agent
        .create_sandbox(ctx(), &requests::create_sandbox())
        .await
        .map(drop)
}

/// DestroySandbox.
pub async fn destroy_sandbox(client: &AgentClient) -> ttrpc::Result<()> {
    client.destroy_sandbox().await
}

/// CreateContainer then StartContainer.
pub async fn create_start(
    client: &AgentClient,
    req: &pb::CreateContainerRequest,
) -> ttrpc::Result<()> {
    client.create_container(req).await?;
    client.start_container(&req.container_id).await
}

/// RemoveContainer, killing what runs.
pub async fn remove(client: &AgentClient, cid: &str) -> ttrpc::Result<()> {
    client.remove_container(cid, 0).await
}

/// ExecProcess of `args` as `exec_id`, then WaitProcess; returns the exit status.
pub async fn exec_wait(
    client: &AgentClient,
    cid: &str,
    exec_id: &str,
    args: &[&str],
) -> ttrpc::Result<i32> {
    client
        .agent
        .exec_process(ctx(), &requests::exec_process(cid, exec_id, args))
        .await?;
    client.wait_process(cid, exec_id).await
}
