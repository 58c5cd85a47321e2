//! `grpc.AgentService`: decodes each request, calls the subsystem that owns it, encodes the
//! answer. One line per RPC here; the work lives in the subsystems.

use std::sync::Arc;

use agent_protos::agent_ttrpc::AgentService;
use agent_protos::empty::Empty;
use agent_protos::{agent, csi, types};
use async_trait::async_trait;
use ttrpc::r#async::TtrpcContext;

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
        req: agent::CreateContainerRequest,
    ) -> ttrpc::Result<Empty> {
        super::container::create_container(&self.agent, req).await
    }

    async fn start_container(
        &self,
        _ctx: &TtrpcContext,
        req: agent::StartContainerRequest,
    ) -> ttrpc::Result<Empty> {
        super::container::start_container(&self.agent, req).await
    }

    async fn remove_container(
        &self,
        _ctx: &TtrpcContext,
        req: agent::RemoveContainerRequest,
    ) -> ttrpc::Result<Empty> {
        super::container::remove_container(&self.agent, req).await
    }

    async fn exec_process(
        &self,
        _ctx: &TtrpcContext,
        req: agent::ExecProcessRequest,
    ) -> ttrpc::Result<Empty> {
        super::process::exec_process(&self.agent, req).await
    }

    async fn signal_process(
        &self,
        _ctx: &TtrpcContext,
        req: agent::SignalProcessRequest,
    ) -> ttrpc::Result<Empty> {
        super::process::signal_process(&self.agent, req).await
    }

    async fn wait_process(
        &self,
        _ctx: &TtrpcContext,
        req: agent::WaitProcessRequest,
    ) -> ttrpc::Result<agent::WaitProcessResponse> {
        super::process::wait_process(&self.agent, req).await
    }

    async fn update_container(
        &self,
        _ctx: &TtrpcContext,
        req: agent::UpdateContainerRequest,
    ) -> ttrpc::Result<Empty> {
        super::container::update_container(&self.agent, req).await
    }

    async fn update_ephemeral_mounts(
        &self,
        _ctx: &TtrpcContext,
        req: agent::UpdateEphemeralMountsRequest,
    ) -> ttrpc::Result<Empty> {
        super::storage::update_ephemeral_mounts(&self.agent, req)
    }

    async fn stats_container(
        &self,
        _ctx: &TtrpcContext,
        req: agent::StatsContainerRequest,
    ) -> ttrpc::Result<agent::StatsContainerResponse> {
        super::container::stats_container(&self.agent, req).await
    }

    async fn pause_container(
        &self,
        _ctx: &TtrpcContext,
        req: agent::PauseContainerRequest,
    ) -> ttrpc::Result<Empty> {
        super::container::pause_container(&self.agent, req).await
    }

    async fn resume_container(
        &self,
        _ctx: &TtrpcContext,
        req: agent::ResumeContainerRequest,
    ) -> ttrpc::Result<Empty> {
        super::container::resume_container(&self.agent, req).await
    }

    async fn remove_stale_virtiofs_share_mounts(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::RemoveStaleVirtiofsShareMountsRequest,
    ) -> ttrpc::Result<Empty> {
        super::storage::remove_stale_virtiofs_share_mounts(&self.agent)
    }

    async fn get_diagnostic_data(
        &self,
        _ctx: &TtrpcContext,
        req: agent::GetDiagnosticDataRequest,
    ) -> ttrpc::Result<agent::GetDiagnosticDataResponse> {
        super::guest::get_diagnostic_data(&self.agent, req)
    }

    async fn write_stdin(
        &self,
        _ctx: &TtrpcContext,
        req: agent::WriteStreamRequest,
    ) -> ttrpc::Result<agent::WriteStreamResponse> {
        super::stdio::write_stdin(&self.agent, req).await
    }

    async fn read_stdout(
        &self,
        _ctx: &TtrpcContext,
        req: agent::ReadStreamRequest,
    ) -> ttrpc::Result<agent::ReadStreamResponse> {
        super::stdio::read_stdout(&self.agent, req).await
    }

    async fn read_stderr(
        &self,
        _ctx: &TtrpcContext,
        req: agent::ReadStreamRequest,
    ) -> ttrpc::Result<agent::ReadStreamResponse> {
        super::stdio::read_stderr(&self.agent, req).await
    }

    async fn close_stdin(
        &self,
        _ctx: &TtrpcContext,
        req: agent::CloseStdinRequest,
    ) -> ttrpc::Result<Empty> {
        super::stdio::close_stdin(&self.agent, req).await
    }

    async fn tty_win_resize(
        &self,
        _ctx: &TtrpcContext,
        req: agent::TtyWinResizeRequest,
    ) -> ttrpc::Result<Empty> {
        super::stdio::tty_win_resize(&self.agent, req).await
    }

    async fn update_interface(
        &self,
        _ctx: &TtrpcContext,
        req: agent::UpdateInterfaceRequest,
    ) -> ttrpc::Result<types::Interface> {
        super::network::update_interface(&self.agent, req).await
    }

    async fn update_routes(
        &self,
        _ctx: &TtrpcContext,
        req: agent::UpdateRoutesRequest,
    ) -> ttrpc::Result<agent::Routes> {
        super::network::update_routes(&self.agent, req).await
    }

    async fn list_interfaces(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ListInterfacesRequest,
    ) -> ttrpc::Result<agent::Interfaces> {
        super::network::list_interfaces(&self.agent).await
    }

    async fn list_routes(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::ListRoutesRequest,
    ) -> ttrpc::Result<agent::Routes> {
        super::network::list_routes(&self.agent).await
    }

    async fn add_arp_neighbors(
        &self,
        _ctx: &TtrpcContext,
        req: agent::AddARPNeighborsRequest,
    ) -> ttrpc::Result<Empty> {
        super::network::add_arp_neighbors(&self.agent, req).await
    }

    async fn get_ip_tables(
        &self,
        _ctx: &TtrpcContext,
        req: agent::GetIPTablesRequest,
    ) -> ttrpc::Result<agent::GetIPTablesResponse> {
        super::network::get_ip_tables(&self.agent, req).await
    }

    async fn set_ip_tables(
        &self,
        _ctx: &TtrpcContext,
        req: agent::SetIPTablesRequest,
    ) -> ttrpc::Result<agent::SetIPTablesResponse> {
        super::network::set_ip_tables(&self.agent, req).await
    }

    async fn get_metrics(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::GetMetricsRequest,
    ) -> ttrpc::Result<agent::Metrics> {
        super::guest::get_metrics(&self.agent)
    }

    async fn mem_agent_memcg_set(
        &self,
        _ctx: &TtrpcContext,
        req: agent::MemAgentMemcgConfig,
    ) -> ttrpc::Result<Empty> {
        super::guest::mem_agent_memcg_set(&self.agent, req)
    }

    async fn mem_agent_compact_set(
        &self,
        _ctx: &TtrpcContext,
        req: agent::MemAgentCompactConfig,
    ) -> ttrpc::Result<Empty> {
        super::guest::mem_agent_compact_set(&self.agent, req)
    }

    async fn create_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: agent::CreateSandboxRequest,
    ) -> ttrpc::Result<Empty> {
        super::sandbox::create_sandbox(&self.agent, req).await
    }

    async fn destroy_sandbox(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::DestroySandboxRequest,
    ) -> ttrpc::Result<Empty> {
        super::sandbox::destroy_sandbox(&self.agent).await
    }

    async fn online_cpu_mem(
        &self,
        _ctx: &TtrpcContext,
        req: agent::OnlineCPUMemRequest,
    ) -> ttrpc::Result<Empty> {
        super::guest_hotplug::online_cpu_mem(&self.agent, req).await
    }

    async fn reseed_random_dev(
        &self,
        _ctx: &TtrpcContext,
        req: agent::ReseedRandomDevRequest,
    ) -> ttrpc::Result<Empty> {
        super::guest::reseed_random_dev(&self.agent, req)
    }

    async fn get_guest_details(
        &self,
        _ctx: &TtrpcContext,
        req: agent::GuestDetailsRequest,
    ) -> ttrpc::Result<agent::GuestDetailsResponse> {
        super::guest::get_guest_details(&self.agent, req)
    }

    async fn mem_hotplug_by_probe(
        &self,
        _ctx: &TtrpcContext,
        req: agent::MemHotplugByProbeRequest,
    ) -> ttrpc::Result<Empty> {
        super::guest_hotplug::mem_hotplug_by_probe(&self.agent, req).await
    }

    async fn set_guest_date_time(
        &self,
        _ctx: &TtrpcContext,
        req: agent::SetGuestDateTimeRequest,
    ) -> ttrpc::Result<Empty> {
        super::guest::set_guest_date_time(&self.agent, req)
    }

    async fn copy_file(
        &self,
        _ctx: &TtrpcContext,
        req: agent::CopyFileRequest,
    ) -> ttrpc::Result<Empty> {
        super::guest::copy_file(&self.agent, req)
    }

    async fn get_oom_event(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::GetOOMEventRequest,
    ) -> ttrpc::Result<agent::OOMEvent> {
        super::sandbox::get_oom_event(&self.agent).await
    }

    async fn add_swap(
        &self,
        _ctx: &TtrpcContext,
        req: agent::AddSwapRequest,
    ) -> ttrpc::Result<Empty> {
        super::storage::add_swap(&self.agent, req).await
    }

    async fn add_swap_path(
        &self,
        _ctx: &TtrpcContext,
        req: agent::AddSwapPathRequest,
    ) -> ttrpc::Result<Empty> {
        super::storage::add_swap_path(&self.agent, req)
    }

    async fn get_volume_stats(
        &self,
        _ctx: &TtrpcContext,
        req: agent::VolumeStatsRequest,
    ) -> ttrpc::Result<csi::VolumeStatsResponse> {
        super::storage::get_volume_stats(&self.agent, req)
    }

    async fn resize_volume(
        &self,
        _ctx: &TtrpcContext,
        req: agent::ResizeVolumeRequest,
    ) -> ttrpc::Result<Empty> {
        super::storage::resize_volume(&self.agent, req).await
    }

    async fn set_policy(
        &self,
        _ctx: &TtrpcContext,
        _req: agent::SetPolicyRequest,
    ) -> ttrpc::Result<Empty> {
        Err(super::guest::set_policy())
    }
}
