//! `grpc.AgentService`: decodes each request, calls the subsystem that owns it, encodes the
//! answer. One line per RPC here; the work lives in the subsystems.

use std::sync::Arc;

use agent_protos::agent_ttrpc::AgentService;
use agent_protos::empty::Empty;
use agent_protos::{agent, csi, types};
use async_trait::async_trait;
use ttrpc::r#async::TtrpcContext;

use super::error::not_implemented;
use crate::Agent;

/// Serves `grpc.AgentService` for one [`Agent`].
#[derive(Debug)]
pub struct AgentRpc {
    agent: Arc<Agent>,
}

impl AgentRpc {
    /// The service of `agent`.
    pub fn new(agent: Arc<Agent>) -> Self {
        AgentRpc { agent }
    }
}

#[async_trait]
impl AgentService for AgentRpc {
    async fn create_container(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::CreateContainerRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("CreateContainer"))
    }

    async fn start_container(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::StartContainerRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("StartContainer"))
    }

    async fn remove_container(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::RemoveContainerRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("RemoveContainer"))
    }

    async fn exec_process(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ExecProcessRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("ExecProcess"))
    }

    async fn signal_process(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::SignalProcessRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("SignalProcess"))
    }

    async fn wait_process(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::WaitProcessRequest,
    ) -> ttrpc::Result<agent::WaitProcessResponse> {
        Err(not_implemented("WaitProcess"))
    }

    async fn update_container(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::UpdateContainerRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("UpdateContainer"))
    }

    async fn update_ephemeral_mounts(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::UpdateEphemeralMountsRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("UpdateEphemeralMounts"))
    }

    async fn stats_container(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::StatsContainerRequest,
    ) -> ttrpc::Result<agent::StatsContainerResponse> {
        Err(not_implemented("StatsContainer"))
    }

    async fn pause_container(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::PauseContainerRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("PauseContainer"))
    }

    async fn resume_container(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ResumeContainerRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("ResumeContainer"))
    }

    async fn remove_stale_virtiofs_share_mounts(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::RemoveStaleVirtiofsShareMountsRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("RemoveStaleVirtiofsShareMounts"))
    }

    async fn get_diagnostic_data(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::GetDiagnosticDataRequest,
    ) -> ttrpc::Result<agent::GetDiagnosticDataResponse> {
        Err(not_implemented("GetDiagnosticData"))
    }

    async fn write_stdin(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::WriteStreamRequest,
    ) -> ttrpc::Result<agent::WriteStreamResponse> {
        Err(not_implemented("WriteStdin"))
    }

    async fn read_stdout(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ReadStreamRequest,
    ) -> ttrpc::Result<agent::ReadStreamResponse> {
        Err(not_implemented("ReadStdout"))
    }

    async fn read_stderr(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ReadStreamRequest,
    ) -> ttrpc::Result<agent::ReadStreamResponse> {
        Err(not_implemented("ReadStderr"))
    }

    async fn close_stdin(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::CloseStdinRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("CloseStdin"))
    }

    async fn tty_win_resize(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::TtyWinResizeRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("TtyWinResize"))
    }

    async fn update_interface(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::UpdateInterfaceRequest,
    ) -> ttrpc::Result<types::Interface> {
        Err(not_implemented("UpdateInterface"))
    }

    async fn update_routes(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::UpdateRoutesRequest,
    ) -> ttrpc::Result<agent::Routes> {
        Err(not_implemented("UpdateRoutes"))
    }

    async fn list_interfaces(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ListInterfacesRequest,
    ) -> ttrpc::Result<agent::Interfaces> {
        Err(not_implemented("ListInterfaces"))
    }

    async fn list_routes(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ListRoutesRequest,
    ) -> ttrpc::Result<agent::Routes> {
        Err(not_implemented("ListRoutes"))
    }

    async fn add_arp_neighbors(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::AddARPNeighborsRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("AddARPNeighbors"))
    }

    async fn get_ip_tables(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::GetIPTablesRequest,
    ) -> ttrpc::Result<agent::GetIPTablesResponse> {
        Err(not_implemented("GetIPTables"))
    }

    async fn set_ip_tables(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::SetIPTablesRequest,
    ) -> ttrpc::Result<agent::SetIPTablesResponse> {
        Err(not_implemented("SetIPTables"))
    }

    async fn get_metrics(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::GetMetricsRequest,
    ) -> ttrpc::Result<agent::Metrics> {
        Err(not_implemented("GetMetrics"))
    }

    async fn mem_agent_memcg_set(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::MemAgentMemcgConfig,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("MemAgentMemcgSet"))
    }

    async fn mem_agent_compact_set(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::MemAgentCompactConfig,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("MemAgentCompactSet"))
    }

    async fn create_sandbox(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::CreateSandboxRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("CreateSandbox"))
    }

    async fn destroy_sandbox(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::DestroySandboxRequest,
    ) -> ttrpc::Result<Empty> {
        self.agent.request_stop();
        Ok(Empty::new())
    }

    async fn online_cpu_mem(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::OnlineCPUMemRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("OnlineCPUMem"))
    }

    async fn reseed_random_dev(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ReseedRandomDevRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("ReseedRandomDev"))
    }

    async fn get_guest_details(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::GuestDetailsRequest,
    ) -> ttrpc::Result<agent::GuestDetailsResponse> {
        Err(not_implemented("GetGuestDetails"))
    }

    async fn mem_hotplug_by_probe(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::MemHotplugByProbeRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("MemHotplugByProbe"))
    }

    async fn set_guest_date_time(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::SetGuestDateTimeRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("SetGuestDateTime"))
    }

    async fn copy_file(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::CopyFileRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("CopyFile"))
    }

    async fn get_oom_event(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::GetOOMEventRequest,
    ) -> ttrpc::Result<agent::OOMEvent> {
        Err(not_implemented("GetOOMEvent"))
    }

    async fn add_swap(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::AddSwapRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("AddSwap"))
    }

    async fn add_swap_path(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::AddSwapPathRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("AddSwapPath"))
    }

    async fn get_volume_stats(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::VolumeStatsRequest,
    ) -> ttrpc::Result<csi::VolumeStatsResponse> {
        Err(not_implemented("GetVolumeStats"))
    }

    async fn resize_volume(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ResizeVolumeRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("ResizeVolume"))
    }

    async fn set_policy(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::SetPolicyRequest,
    ) -> ttrpc::Result<Empty> {
        Err(not_implemented("SetPolicy"))
    }
}
