//! Shortcuts for the lifecycle and network RPCs: build the request from ids, call without a
//! deadline (waits and long polls last as long as they must), return the interesting part of
//! the reply.

use agent_protos::agent as pb;
use agent_protos::health::CheckRequest;
use agent_protos::{oci, types};
use protobuf::MessageField;

use crate::client::{AgentClient, ctx};

impl AgentClient {
    /// `grpc.Health/Check`.
    pub async fn check(&self) -> ttrpc::Result<()> {
        self.health
            .check(ctx(), &CheckRequest::new())
            .await
            .map(drop)
    }

    /// CreateContainer.
    pub async fn create_container(&self, req: &pb::CreateContainerRequest) -> ttrpc::Result<()> {
        self.agent.create_container(ctx(), req).await.map(drop)
    }

    /// StartContainer.
    pub async fn start_container(&self, cid: &str) -> ttrpc::Result<()> {
        let req = pb::StartContainerRequest {
            container_id: cid.into(),
            ..Default::default()
        };
        self.agent.start_container(ctx(), &req).await.map(drop)
    }

    /// ExecProcess of `process` as `exec_id`.
    pub async fn exec_process(
        &self,
        cid: &str,
        exec_id: &str,
        process: oci::Process,
    ) -> ttrpc::Result<()> {
        let req = pb::ExecProcessRequest {
            container_id: cid.into(),
            exec_id: exec_id.into(),
            process: MessageField::some(process),
            ..Default::default()
        };
        self.agent.exec_process(ctx(), &req).await.map(drop)
    }

    /// SignalProcess.
    pub async fn signal_process(&self, cid: &str, exec_id: &str, signal: u32) -> ttrpc::Result<()> {
        let req = pb::SignalProcessRequest {
            container_id: cid.into(),
            exec_id: exec_id.into(),
            signal,
            ..Default::default()
        };
        self.agent.signal_process(ctx(), &req).await.map(drop)
    }

    /// WaitProcess: the exit code.
    pub async fn wait_process(&self, cid: &str, exec_id: &str) -> ttrpc::Result<i32> {
        let req = pb::WaitProcessRequest {
            container_id: cid.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.agent.wait_process(ctx(), &req).await.map(|r| r.status)
    }

    /// One ReadStdout (ReadStderr when `stderr`) of up to 64 KiB; empty is end of stream.
    pub async fn read_output(
        &self,
        cid: &str,
        exec_id: &str,
        stderr: bool,
    ) -> ttrpc::Result<Vec<u8>> {
        let req = pb::ReadStreamRequest {
            container_id: cid.into(),
            exec_id: exec_id.into(),
            len: 64 * 1024,
            ..Default::default()
        };
        let reply = match stderr {
            true => self.agent.read_stderr(ctx(), &req).await,
            false => self.agent.read_stdout(ctx(), &req).await,
        };
        reply.map(|r| r.data)
    }

    /// Reads stdout (stderr when `stderr`) to the end of the stream.
    pub async fn read_to_end(
        &self,
        cid: &str,
        exec_id: &str,
        stderr: bool,
    ) -> ttrpc::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let chunk = self.read_output(cid, exec_id, stderr).await?;
            if chunk.is_empty() {
                return Ok(out);
            }
            out.extend(chunk);
        }
    }

    /// WriteStdin: the bytes written; empty `data` closes stdin.
    pub async fn write_stdin(&self, cid: &str, exec_id: &str, data: &[u8]) -> ttrpc::Result<u32> {
        let req = pb::WriteStreamRequest {
            container_id: cid.into(),
            exec_id: exec_id.into(),
            data: data.to_vec(),
            ..Default::default()
        };
        self.agent.write_stdin(ctx(), &req).await.map(|r| r.len)
    }

    /// RemoveContainer with `timeout` seconds (0: wait as long as it takes).
    pub async fn remove_container(&self, cid: &str, timeout: u32) -> ttrpc::Result<()> {
        let req = pb::RemoveContainerRequest {
            container_id: cid.into(),
            timeout,
            ..Default::default()
        };
        self.agent.remove_container(ctx(), &req).await.map(drop)
    }

    /// PauseContainer (freezes its cgroup).
    pub async fn pause_container(&self, cid: &str) -> ttrpc::Result<()> {
        let req = pb::PauseContainerRequest {
            container_id: cid.into(),
            ..Default::default()
        };
        self.agent.pause_container(ctx(), &req).await.map(drop)
    }

    /// ResumeContainer (thaws its cgroup).
    pub async fn resume_container(&self, cid: &str) -> ttrpc::Result<()> {
        let req = pb::ResumeContainerRequest {
            container_id: cid.into(),
            ..Default::default()
        };
        self.agent.resume_container(ctx(), &req).await.map(drop)
    }

    /// UpdateContainer with `resources`.
    pub async fn update_container(
        &self,
        cid: &str,
        resources: oci::LinuxResources,
    ) -> ttrpc::Result<()> {
        let req = pb::UpdateContainerRequest {
            container_id: cid.into(),
            resources: MessageField::some(resources),
            ..Default::default()
        };
        self.agent.update_container(ctx(), &req).await.map(drop)
    }

    /// StatsContainer.
    pub async fn stats_container(&self, cid: &str) -> ttrpc::Result<pb::StatsContainerResponse> {
        let req = pb::StatsContainerRequest {
            container_id: cid.into(),
            ..Default::default()
        };
        self.agent.stats_container(ctx(), &req).await
    }

    /// TtyWinResize of the terminal of `exec_id` to `rows` x `cols`.
    pub async fn tty_win_resize(
        &self,
        cid: &str,
        exec_id: &str,
        rows: u32,
        cols: u32,
    ) -> ttrpc::Result<()> {
        let req = pb::TtyWinResizeRequest {
            container_id: cid.into(),
            exec_id: exec_id.into(),
            row: rows,
            column: cols,
            ..Default::default()
        };
        self.agent.tty_win_resize(ctx(), &req).await.map(drop)
    }

    /// CreateSandbox with `hostname` and `sandbox_id` (no sandbox pid namespace).
    pub async fn create_sandbox(&self, sandbox_id: &str, hostname: &str) -> ttrpc::Result<()> {
        let req = pb::CreateSandboxRequest {
            hostname: hostname.into(),
            sandbox_id: sandbox_id.into(),
            ..Default::default()
        };
        self.agent.create_sandbox(ctx(), &req).await.map(drop)
    }

    /// DestroySandbox.
    pub async fn destroy_sandbox(&self) -> ttrpc::Result<()> {
        let req = pb::DestroySandboxRequest::default();
        self.agent.destroy_sandbox(ctx(), &req).await.map(drop)
    }

    /// UpdateInterface: the interface as the agent configured it.
    pub async fn update_interface(
        &self,
        iface: types::Interface,
    ) -> ttrpc::Result<types::Interface> {
        let req = pb::UpdateInterfaceRequest {
            interface: MessageField::some(iface),
            ..Default::default()
        };
        self.agent.update_interface(ctx(), &req).await
    }

    /// UpdateRoutes: the main table afterwards.
    pub async fn update_routes(
        &self,
        routes: Vec<types::Route>,
    ) -> ttrpc::Result<Vec<types::Route>> {
        let req = pb::UpdateRoutesRequest {
            routes: MessageField::some(pb::Routes {
                Routes: routes,
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(self.agent.update_routes(ctx(), &req).await?.Routes)
    }

    /// ListInterfaces.
    pub async fn list_interfaces(&self) -> ttrpc::Result<Vec<types::Interface>> {
        let req = pb::ListInterfacesRequest::new();
        Ok(self.agent.list_interfaces(ctx(), &req).await?.Interfaces)
    }

    /// ListRoutes.
    pub async fn list_routes(&self) -> ttrpc::Result<Vec<types::Route>> {
        let req = pb::ListRoutesRequest::new();
        Ok(self.agent.list_routes(ctx(), &req).await?.Routes)
    }

    /// AddARPNeighbors.
    pub async fn add_arp_neighbors(&self, neighbors: Vec<types::ARPNeighbor>) -> ttrpc::Result<()> {
        let req = pb::AddARPNeighborsRequest {
            neighbors: MessageField::some(pb::ARPNeighbors {
                ARPNeighbors: neighbors,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.agent.add_arp_neighbors(ctx(), &req).await.map(drop)
    }
}
