//! An agent built from the fakes, served over a real unix socket like the binary serves.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_fakes::FakeHost;
use kata_agent::Agent;
use kata_agent::config::Config;
use kata_agent::host::ServerAddr;
use kata_agent::linux::LinuxTransport;
use kata_agent::rpc::RpcServer;

/// An in-process agent on the fakes, listening on a unix socket.
#[derive(Debug)]
pub struct SocketAgent {
    /// The fakes under the agent (script processes, inject devices...).
    pub fake: FakeHost,
    /// The agent.
    pub agent: Arc<Agent>,
    server: RpcServer,
    path: PathBuf,
}

impl SocketAgent {
    /// Starts an agent with `config` on the unix socket `path`; call inside a tokio runtime.
    pub async fn start(path: &Path, config: Config) -> io::Result<Self> {
        let fake = FakeHost::new();
        let mut host = fake.host();
        host.transport = Arc::new(LinuxTransport::new());
        let agent = Arc::new(Agent::new(config, host));
        agent.start();
        let server = kata_agent::rpc::serve(agent.clone(), &ServerAddr::Unix(path.into())).await?;
        Ok(SocketAgent {
            fake,
            agent,
            server,
            path: path.into(),
        })
    }

    /// The address to connect to.
    pub fn addr(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Stops serving and the agent's tasks.
    pub async fn stop(self) -> io::Result<()> {
        self.agent.request_stop();
        self.server.shutdown().await
    }
}
