//! A guest under test: the fakes, the fake VMM around them, the agent built on them and served
//! over the fake transport, and a ttrpc client connected to it as a host runtime would be.

use std::sync::Arc;

use agent_fakes::{FakeHost, Script};
use kata_agent::Agent;
use kata_agent::config::Config;
use kata_agent::host::CgroupVersion;
use kata_agent::rpc::{RpcServer, serve};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::error::{FormatError, ScenarioError};
use super::expect::errno;
use crate::client::AgentClient;
use crate::vmm::FakeVmm;
use crate::vmm::config::{CgroupMode, ProgramSpec, VmConfig};

/// What the trace says about the boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BootInfo {
    /// CPUs, memory and PCI ports.
    pub vm: String,
    /// The agent's command line, when one was given.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cmdline: String,
    /// The agent's hotplug timeout.
    pub hotplug_timeout: String,
    /// Configuration warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_warnings: Vec<String>,
}

impl BootInfo {
    /// The boot record of a VM that did not boot.
    pub fn failed(config: &VmConfig) -> Self {
        BootInfo {
            vm: "boot failed".into(),
            cmdline: config.cmdline.clone(),
            hotplug_timeout: String::new(),
            config_warnings: Vec::new(),
        }
    }
}

/// A booted guest with its agent serving.
pub struct GuestVm {
    /// The fakes the agent runs on.
    pub fake: FakeHost,
    /// The agent (for checks of its internal state, never to drive it).
    pub agent: Arc<Agent>,
    /// The fake VMM.
    pub vmm: FakeVmm,
    /// The host's ttrpc client.
    pub client: AgentClient,
    /// What the boot looked like.
    pub boot: BootInfo,
    server: Option<RpcServer>,
    tasks: Vec<JoinHandle<()>>,
    /// The thread's log and trace capture, while the guest lives.
    _capture: Option<super::capture::Capture>,
}

impl std::fmt::Debug for GuestVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestVm")
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

fn script(spec: &ProgramSpec) -> Result<Script, FormatError> {
    let mut script = if let Some(name) = &spec.fail_launch {
        Script::fail_launch(errno(name)?)
    } else if spec.until_signal {
        Script::until_signal()
    } else if spec.cat {
        Script::cat()
    } else {
        Script::exit(spec.exit)
    };
    if let Some(out) = &spec.stdout {
        script = script.stdout(out.as_bytes().to_vec());
    }
    if let Some(err) = &spec.stderr {
        script = script.stderr(err.as_bytes().to_vec());
    }
    if let Some(d) = spec.sleep {
        script = script.sleep(d);
    }
    Ok(script)
}

impl GuestVm {
    /// Boots `config`: fakes, VMM (cold-plugged sysfs), agent, ttrpc server and client.
    /// Needs a tokio runtime (paused time keeps everything deterministic).
    pub async fn boot(config: &VmConfig) -> Result<GuestVm, ScenarioError> {
        let version = match config.cgroups {
            CgroupMode::V1 => CgroupVersion::V1,
            CgroupMode::V2 => CgroupVersion::V2,
        };
        let fake = FakeHost::with_cgroup_version(version);
        for (name, spec) in &config.programs {
            let script =
                script(spec).map_err(|e| ScenarioError::Boot(format!("program {name}: {e}")))?;
            // A program named by its path is also a file there (the debug console looks for
            // its shell); the launcher knows scripts by base name.
            let base = match name.rsplit_once('/') {
                Some((_, base)) if name.starts_with('/') => {
                    fake.sysfs
                        .write_file(name, "")
                        .map_err(|e| ScenarioError::Boot(format!("program {name}: {e}")))?;
                    base
                }
                _ => name.as_str(),
            };
            fake.launcher.script(base, script);
        }
        let vmm = FakeVmm::boot(config, &fake)?;
        fake.baseline();
        let (agent_config, warnings) = Config::from_cmdline(&config.cmdline);
        let addr = agent_config.server_addr.clone();
        let boot = BootInfo {
            vm: format!(
                "{} CPU(s) of {}, {} of {}, PCI ports {}",
                config.cpus,
                config.max_cpus,
                config.memory,
                config.max_memory,
                config
                    .pci
                    .iter()
                    .map(|p| format!("{}@{:02x}", p.id, p.slot))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            cmdline: config.cmdline.clone(),
            hotplug_timeout: humantime::format_duration(agent_config.hotplug_timeout).to_string(),
            config_warnings: warnings.iter().map(ToString::to_string).collect(),
        };
        let capture = super::capture::start(&agent_config, fake.transport.clone());
        let agent = Arc::new(Agent::new(agent_config, fake.host()));
        let mut tasks = agent.start();
        let server = serve(agent.clone(), &addr)
            .await
            .map_err(|e| ScenarioError::Boot(format!("agent does not serve on {addr}: {e}")))?;
        let stream = fake
            .transport
            .connect(&addr)
            .map_err(|e| ScenarioError::Boot(format!("cannot connect to {addr}: {e}")))?;
        let client = AgentClient::from_stream(stream);
        let capture = capture.map(|mut c| {
            tasks.append(&mut c.tasks);
            c
        });
        Ok(GuestVm {
            fake,
            agent,
            vmm,
            client,
            boot,
            server: Some(server),
            tasks,
            _capture: capture,
        })
    }

    /// Stops the server and the agent's tasks.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown().await;
        }
        self.agent.request_stop();
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}
