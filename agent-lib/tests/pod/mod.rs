//! A pod on fakes: an agent served over ttrpc on the fake transport, a client, and helpers
//! that speak Kata's wire messages the way the runtime does.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use agent_fakes::{FakeHost, Reaction, Script};
use agent_harness::{AgentClient, context};
use agent_protos::{agent as pb, oci};
use kata_agent::Agent;
use kata_agent::config::Config;
use kata_agent::rpc::{RpcServer, serve};
use nix::sys::signal::Signal;
use protobuf::MessageField;

/// An agent on fakes, served and connected.
pub struct Pod {
    pub fake: FakeHost,
    pub agent: Arc<Agent>,
    pub client: AgentClient,
    server: Option<RpcServer>,
}

/// The programs every pod knows.
fn scripts(fake: &FakeHost) {
    let l = &fake.launcher;
    l.script("pause", Script::until_signal());
    l.script("sleep", Script::until_signal());
    l.script("hello", Script::exit(0).stdout("hello\n").stderr("oops\n"));
    l.script("cat", Script::cat());
    l.script("fail3", Script::exit(3));
    l.script(
        "trap-term",
        Script::until_signal().on_signal(Signal::SIGTERM, Reaction::Exit(0)),
    );
    l.script(
        "modprobe",
        Script::exit(0).stdout("insmod /lib/modules/x.ko\n"),
    );
}

impl Pod {
    /// A fresh pod: nothing created yet.
    pub async fn new() -> Pod {
        let fake = FakeHost::new();
        scripts(&fake);
        let config = Config::default();
        let addr = config.server_addr.clone();
        let agent = Arc::new(Agent::new(config, fake.host()));
        let server = serve(agent.clone(), &addr).await.expect("serve");
        let stream = fake.transport.connect(&addr).expect("connect");
        let client = AgentClient::from_stream(stream);
        fake.baseline();
        Pod {
            fake,
            agent,
            client,
            server: Some(server),
        }
    }

    /// A pod whose sandbox is created (`hostname` "pod", id "sb"), baseline taken after.
    pub async fn with_sandbox() -> Pod {
        let pod = Pod::new().await;
        pod.create_sandbox().await.expect("CreateSandbox");
        pod.fake.baseline();
        pod
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown().await;
        }
    }

    pub async fn create_sandbox(&self) -> ttrpc::Result<()> {
        let req = pb::CreateSandboxRequest {
            hostname: "pod".into(),
            sandbox_id: "sb".into(),
            ..Default::default()
        };
        self.client
            .agent
            .create_sandbox(ctx(), &req)
            .await
            .map(drop)
    }

    pub async fn create(&self, cid: &str, args: &[&str], terminal: bool) -> ttrpc::Result<()> {
        self.create_req(container_request(cid, args, terminal))
            .await
    }

    pub async fn create_req(&self, req: pb::CreateContainerRequest) -> ttrpc::Result<()> {
        self.client
            .agent
            .create_container(ctx(), &req)
            .await
            .map(drop)
    }

    pub async fn start(&self, cid: &str) -> ttrpc::Result<()> {
        let req = pb::StartContainerRequest {
            container_id: cid.into(),
            ..Default::default()
        };
        self.client
            .agent
            .start_container(ctx(), &req)
            .await
            .map(drop)
    }

    pub async fn run(&self, cid: &str, args: &[&str]) {
        self.create(cid, args, false)
            .await
            .expect("CreateContainer");
        self.start(cid).await.expect("StartContainer");
    }

    pub async fn exec(
        &self,
        cid: &str,
        eid: &str,
        args: &[&str],
        terminal: bool,
    ) -> ttrpc::Result<()> {
        let req = pb::ExecProcessRequest {
            container_id: cid.into(),
            exec_id: eid.into(),
            process: MessageField::some(process(args, terminal)),
            ..Default::default()
        };
        self.client.agent.exec_process(ctx(), &req).await.map(drop)
    }

    pub async fn signal(&self, cid: &str, eid: &str, signal: i32) -> ttrpc::Result<()> {
        let req = pb::SignalProcessRequest {
            container_id: cid.into(),
            exec_id: eid.into(),
            signal: signal as u32,
            ..Default::default()
        };
        self.client
            .agent
            .signal_process(ctx(), &req)
            .await
            .map(drop)
    }

    pub async fn wait(&self, cid: &str, eid: &str) -> ttrpc::Result<i32> {
        let req = pb::WaitProcessRequest {
            container_id: cid.into(),
            exec_id: eid.into(),
            ..Default::default()
        };
        self.client
            .agent
            .wait_process(ctx(), &req)
            .await
            .map(|r| r.status)
    }

    pub async fn read_stdout(&self, cid: &str, eid: &str) -> ttrpc::Result<Vec<u8>> {
        let req = read_req(cid, eid);
        self.client
            .agent
            .read_stdout(ctx(), &req)
            .await
            .map(|r| r.data)
    }

    pub async fn read_stderr(&self, cid: &str, eid: &str) -> ttrpc::Result<Vec<u8>> {
        let req = read_req(cid, eid);
        self.client
            .agent
            .read_stderr(ctx(), &req)
            .await
            .map(|r| r.data)
    }

    /// Reads stdout until end of stream.
    pub async fn read_all(&self, cid: &str, eid: &str) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let chunk = self.read_stdout(cid, eid).await.expect("ReadStdout");
            if chunk.is_empty() {
                return out;
            }
            out.extend(chunk);
        }
    }

    pub async fn write_stdin(&self, cid: &str, eid: &str, data: &[u8]) -> ttrpc::Result<u32> {
        let req = pb::WriteStreamRequest {
            container_id: cid.into(),
            exec_id: eid.into(),
            data: data.to_vec(),
            ..Default::default()
        };
        self.client
            .agent
            .write_stdin(ctx(), &req)
            .await
            .map(|r| r.len)
    }

    pub async fn remove(&self, cid: &str, timeout: u32) -> ttrpc::Result<()> {
        let req = pb::RemoveContainerRequest {
            container_id: cid.into(),
            timeout,
            ..Default::default()
        };
        self.client
            .agent
            .remove_container(ctx(), &req)
            .await
            .map(drop)
    }

    pub async fn destroy_sandbox(&self) -> ttrpc::Result<()> {
        let req = pb::DestroySandboxRequest::default();
        self.client
            .agent
            .destroy_sandbox(ctx(), &req)
            .await
            .map(drop)
    }

    /// The fake cgroup of container `cid` (default path).
    pub fn cgroup(&self, cid: &str) -> agent_fakes::CgroupState {
        self.fake.cgroups.state(&format!("/{cid}")).expect("cgroup")
    }

    /// The pid of process `eid` of `cid`.
    pub fn pid(&self, cid: &str, eid: &str) -> i32 {
        self.agent
            .containers()
            .process(cid, eid)
            .expect("process")
            .pid()
    }
}

/// A context without a timeout (long-polls, waits).
pub fn ctx() -> ttrpc::context::Context {
    context(Duration::ZERO)
}

fn read_req(cid: &str, eid: &str) -> pb::ReadStreamRequest {
    pb::ReadStreamRequest {
        container_id: cid.into(),
        exec_id: eid.into(),
        len: 64 * 1024,
        ..Default::default()
    }
}

/// An OCI process running `args`.
pub fn process(args: &[&str], terminal: bool) -> oci::Process {
    oci::Process {
        Terminal: terminal,
        Args: args.iter().map(|a| a.to_string()).collect(),
        Env: vec!["PATH=/bin:/usr/bin".into()],
        Cwd: "/".into(),
        User: MessageField::some(oci::User::default()),
        ..Default::default()
    }
}

/// A Kata-shaped spec: rootfs under the shared folder, IPC/UTS/mount namespaces, a memory limit.
pub fn spec(cid: &str, args: &[&str], terminal: bool) -> oci::Spec {
    let namespaces = ["ipc", "uts", "mount"]
        .iter()
        .map(|t| oci::LinuxNamespace {
            Type: t.to_string(),
            ..Default::default()
        })
        .collect();
    let resources = oci::LinuxResources {
        Memory: MessageField::some(oci::LinuxMemory {
            Limit: 128 << 20,
            ..Default::default()
        }),
        ..Default::default()
    };
    oci::Spec {
        Version: "1.1.0".into(),
        Process: MessageField::some(process(args, terminal)),
        Root: MessageField::some(oci::Root {
            Path: format!("/run/kata-containers/shared/containers/{cid}/rootfs"),
            ..Default::default()
        }),
        Hostname: "pod".into(),
        Linux: MessageField::some(oci::Linux {
            Namespaces: namespaces,
            Resources: MessageField::some(resources),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn container_request(cid: &str, args: &[&str], terminal: bool) -> pb::CreateContainerRequest {
    pb::CreateContainerRequest {
        container_id: cid.into(),
        OCI: MessageField::some(spec(cid, args, terminal)),
        ..Default::default()
    }
}

/// The status code of a failed call.
pub fn code(result: ttrpc::Result<impl std::fmt::Debug>) -> ttrpc::Code {
    match result {
        Err(ttrpc::Error::RpcStatus(status)) => status.code(),
        other => panic!("expected an RPC status error, got {other:?}"),
    }
}

/// The status message of a failed call.
pub fn message(result: ttrpc::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(ttrpc::Error::RpcStatus(status)) => status.message().to_owned(),
        other => panic!("expected an RPC status error, got {other:?}"),
    }
}
