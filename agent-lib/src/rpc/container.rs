//! CreateContainer, StartContainer, RemoveContainer, Pause/Resume/Update/StatsContainer.

use std::time::Duration;

use agent_protos::agent;
use agent_protos::empty::Empty;

use super::decode_storages;
use super::oci::{resources_from_proto, spec_from_proto};
use super::stats::stats_to_proto;
use crate::Agent;
use crate::attach::DeviceRequest;
use crate::container::{CreateRequest, SharedMount, StringUser};
use crate::process::StdioPorts;

type Reply<T = Empty> = ttrpc::Result<T>;

/// CreateContainer.
pub(crate) async fn create_container(agent: &Agent, req: agent::CreateContainerRequest) -> Reply {
    let spec = match req.OCI.as_ref() {
        Some(spec) => spec_from_proto(spec)?,
        None => {
            return Err(super::error::status(
                ttrpc::Code::INVALID_ARGUMENT,
                "CreateContainer without an OCI spec",
            ));
        }
    };
    let request = CreateRequest {
        id: req.container_id.clone(),
        spec,
        devices: req
            .devices
            .iter()
            .map(|d| DeviceRequest {
                id: d.id.clone(),
                kind: d.type_.clone(),
                vm_path: d.vm_path.clone(),
                container_path: d.container_path.clone(),
                options: d.options.clone(),
            })
            .collect(),
        storages: decode_storages(&req.storages),
        sandbox_pidns: req.sandbox_pidns,
        string_user: req.string_user.as_ref().map(string_user_from_proto),
        shared_mounts: req
            .shared_mounts
            .iter()
            .map(|m| SharedMount {
                name: m.name.clone(),
                src_ctr: m.src_ctr.clone(),
                src_path: m.src_path.clone(),
                dst_ctr: m.dst_ctr.clone(),
                dst_path: m.dst_path.clone(),
            })
            .collect(),
        ports: StdioPorts {
            stdin: req.stdin_port,
            stdout: req.stdout_port,
            stderr: req.stderr_port,
        },
    };
    agent.containers().create(request).await?;
    Ok(Empty::new())
}

/// The `StringUser` of CreateContainer and ExecProcess.
pub(crate) fn string_user_from_proto(user: &agent::StringUser) -> StringUser {
    StringUser {
        uid: user.uid.clone(),
        gid: user.gid.clone(),
        additional_gids: user.additionalGids.clone(),
    }
}

/// StartContainer.
pub(crate) async fn start_container(agent: &Agent, req: agent::StartContainerRequest) -> Reply {
    agent.containers().start(&req.container_id).await?;
    Ok(Empty::new())
}

/// RemoveContainer: `timeout` seconds, 0 waits forever.
pub(crate) async fn remove_container(agent: &Agent, req: agent::RemoveContainerRequest) -> Reply {
    let timeout = (req.timeout > 0).then(|| Duration::from_secs(u64::from(req.timeout)));
    agent
        .containers()
        .remove(&req.container_id, timeout)
        .await?;
    Ok(Empty::new())
}

/// PauseContainer.
pub(crate) async fn pause_container(agent: &Agent, req: agent::PauseContainerRequest) -> Reply {
    agent.containers().pause(&req.container_id).await?;
    Ok(Empty::new())
}

/// ResumeContainer.
pub(crate) async fn resume_container(agent: &Agent, req: agent::ResumeContainerRequest) -> Reply {
    agent.containers().resume(&req.container_id).await?;
    Ok(Empty::new())
}

/// UpdateContainer: no resources is a no-op, as Kata.
pub(crate) async fn update_container(agent: &Agent, req: agent::UpdateContainerRequest) -> Reply {
    let Some(resources) = req.resources.as_ref() else {
        // Still an error for an unknown container.
        agent.containers().get(&req.container_id)?;
        return Ok(Empty::new());
    };
    let resources = resources_from_proto(resources, "resources")?;
    agent
        .containers()
        .update(&req.container_id, &resources)
        .await?;
    Ok(Empty::new())
}

/// StatsContainer.
pub(crate) async fn stats_container(
    agent: &Agent,
    req: agent::StatsContainerRequest,
) -> Reply<agent::StatsContainerResponse> {
    let stats = agent.containers().stats(&req.container_id).await?;
    Ok(stats_to_proto(&stats))
}
