//! The fakes level: an agent on fakes served over ttrpc on the fake transport, a client, and
//! helpers that speak Kata's wire messages the way the runtime does.

use std::sync::Arc;

use agent_fakes::{FakeHost, Reaction, Script};
use agent_harness::AgentClient;
use agent_protos::{agent as pb, oci};
use kata_agent::Agent;
use kata_agent::config::Config;
use kata_agent::rpc::{RpcServer, serve};
use nix::sys::signal::Signal;

pub use crate::rpc::{code, ctx, message};
use crate::wire::{SpecBuilder, create_request};

/// An agent on fakes, served and connected.
#[derive(Debug)]
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
        Pod::with_config(Config::default()).await
    }

    /// A fresh pod whose agent runs with `config`.
    pub async fn with_config(config: Config) -> Pod {
        let fake = FakeHost::new();
        scripts(&fake);
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

    /// Stops serving.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown().await;
        }
    }

    /// CreateSandbox of pod "pod", id "sb".
    pub async fn create_sandbox(&self) -> ttrpc::Result<()> {
        self.client.create_sandbox("sb", "pod").await
    }

    /// CreateContainer of [`container_request`].
    pub async fn create(&self, cid: &str, args: &[&str], terminal: bool) -> ttrpc::Result<()> {
        self.create_req(container_request(cid, args, terminal))
            .await
    }

    /// CreateContainer of `req`.
    pub async fn create_req(&self, req: pb::CreateContainerRequest) -> ttrpc::Result<()> {
        self.client.create_container(&req).await
    }

    /// StartContainer.
    pub async fn start(&self, cid: &str) -> ttrpc::Result<()> {
        self.client.start_container(cid).await
    }

    /// CreateContainer + StartContainer of `args`.
    pub async fn run(&self, cid: &str, args: &[&str]) {
        self.create(cid, args, false)
            .await
            .expect("CreateContainer");
        self.start(cid).await.expect("StartContainer");
    }

    /// ExecProcess of `args` as `eid`.
    pub async fn exec(
        &self,
        cid: &str,
        eid: &str,
        args: &[&str],
        terminal: bool,
    ) -> ttrpc::Result<()> {
        self.client
            .exec_process(cid, eid, process(args, terminal))
            .await
    }

    /// SignalProcess.
    pub async fn signal(&self, cid: &str, eid: &str, signal: i32) -> ttrpc::Result<()> {
        self.client.signal_process(cid, eid, signal as u32).await
    }

    /// WaitProcess: the exit code.
    pub async fn wait(&self, cid: &str, eid: &str) -> ttrpc::Result<i32> {
        self.client.wait_process(cid, eid).await
    }

    /// One ReadStdout.
    pub async fn read_stdout(&self, cid: &str, eid: &str) -> ttrpc::Result<Vec<u8>> {
        self.client.read_output(cid, eid, false).await
    }

    /// One ReadStderr.
    pub async fn read_stderr(&self, cid: &str, eid: &str) -> ttrpc::Result<Vec<u8>> {
        self.client.read_output(cid, eid, true).await
    }

    /// Reads stdout until end of stream.
    pub async fn read_all(&self, cid: &str, eid: &str) -> Vec<u8> {
        self.client
            .read_to_end(cid, eid, false)
            .await
            .expect("ReadStdout")
    }

    /// WriteStdin: the bytes written.
    pub async fn write_stdin(&self, cid: &str, eid: &str, data: &[u8]) -> ttrpc::Result<u32> {
        self.client.write_stdin(cid, eid, data).await
    }

    /// RemoveContainer with `timeout` seconds.
    pub async fn remove(&self, cid: &str, timeout: u32) -> ttrpc::Result<()> {
        self.client.remove_container(cid, timeout).await
    }

    /// DestroySandbox.
    pub async fn destroy_sandbox(&self) -> ttrpc::Result<()> {
        self.client.destroy_sandbox().await
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

/// An OCI process running `args`, as the fakes' programs expect it.
pub fn process(args: &[&str], terminal: bool) -> oci::Process {
    SpecBuilder::fake_process(args, terminal)
}

/// A Kata-shaped spec: rootfs under the shared folder, IPC/UTS/mount namespaces, a memory limit.
pub fn spec(cid: &str, args: &[&str], terminal: bool) -> oci::Spec {
    SpecBuilder::fake(cid, args).terminal(terminal).build()
}

/// CreateContainer of [`spec`] for `cid` (no exec id, as the fakes' tests always sent it).
pub fn container_request(cid: &str, args: &[&str], terminal: bool) -> pb::CreateContainerRequest {
    pb::CreateContainerRequest {
        exec_id: String::new(),
        ..create_request(cid, spec(cid, args, terminal), false)
    }
}
