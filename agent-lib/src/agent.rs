//! The agent: its configuration, the host it runs on, and the subsystems built over them.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::attach::Attach;
use crate::config::Config;
use crate::console::{
    ConsoleMode, SHELLS, console_mode, find_shell, listen_port, serve_console, serve_sessions,
};
use crate::container::Containers;
use crate::device::{DeviceContext, DeviceWatcher, watch_uevents};
use crate::guest::Guest;
use crate::host::Host;
use crate::network::Network;
use crate::process::PassfdStreams;
use crate::ready::Readiness;
use crate::sandbox::Sandbox;
use crate::storage::{DriverRegistry, Storages};

/// One agent instance. Built once by the binary or a harness, shared by the RPC handlers.
///
/// Each subsystem owns its state behind its own lock; the agent only composes them.
#[derive(Debug)]
pub struct Agent {
    config: Config,
    host: Host,
    devices: Arc<DeviceWatcher>,
    device_ctx: DeviceContext,
    storages: Arc<Storages>,
    sandbox: Arc<Sandbox>,
    containers: Arc<Containers>,
    network: Arc<Network>,
    guest: Guest,
    passfd: Option<Arc<PassfdStreams>>,
    ready: Readiness,
    stop: watch::Sender<bool>,
}

impl Agent {
    /// An agent over `host`, configured by `config`, with nothing left to do before it serves
    /// every RPC. Call [`Agent::start`] to run its background tasks.
    pub fn new(config: Config, host: Host) -> Self {
        Self::with_readiness(config, host, Readiness::ready())
    }

    /// Like [`Agent::new`], for an agent that listens before its start work is done: its
    /// AgentService RPCs and the tasks that need that work wait until `ready` is settled (see
    /// [`crate::startup::serve_first`]).
    pub fn with_readiness(config: Config, host: Host, ready: Readiness) -> Self {
        let (stop, _) = watch::channel(false);
        let devices = Arc::new(DeviceWatcher::new());
        let device_ctx = DeviceContext {
            watcher: devices.clone(),
            sysfs: host.sysfs.clone(),
            hotplug_timeout: config.hotplug_timeout,
        };
        let storages = Arc::new(Storages::new(
            host.clone(),
            device_ctx.clone(),
            DriverRegistry::standard(),
        ));
        let attach = Attach::new(device_ctx.clone(), storages.clone());
        let sandbox = Arc::new(Sandbox::new(host.clone(), attach.clone()));
        let passfd = config
            .passfd_listener_port
            .map(|_| Arc::new(PassfdStreams::default()));
        let containers = Arc::new(Containers::new(
            host.clone(),
            attach,
            sandbox.clone(),
            config.container_pipe_size.unwrap_or(0),
            passfd.clone(),
        ));
        let network = Arc::new(Network::new(host.clone(), device_ctx.clone()));
        let guest = Guest::new(config.mem_agent.clone());
        Agent {
            config,
            host,
            devices,
            device_ctx,
            storages,
            sandbox,
            containers,
            network,
            guest,
            passfd,
            ready,
            stop,
        }
    }

    /// Spawns the background tasks on the current tokio runtime: the uevent loop and, when
    /// enabled, the debug console, the mem-agent and the passfd listener. They end when a stop
    /// is requested. All but the passfd listener start their work once the agent is ready
    /// (the kernel queues uevents meanwhile, and console connections wait to be accepted).
    pub fn start(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let uevents = {
            let source = self.host.uevents.clone();
            let watcher = self.devices.clone();
            let sysfs = self.host.sysfs.clone();
            let agent = self.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = agent.once_ready(watch_uevents(source, watcher, sysfs)) => {}
                    _ = agent.stopped() => {}
                }
            })
        };
        let mut tasks = vec![uevents];
        tasks.extend(self.start_console());
        tasks.extend(self.start_mem_agent());
        tasks.extend(self.start_passfd());
        tasks
    }

    /// The passfd listener, when `agent.passfd_listener_port` was set: on that port next to
    /// the server address.
    fn start_passfd(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        let streams = self.passfd.clone()?;
        let port = self.config.passfd_listener_port?;
        let addr = self.config.server_addr.port_addr(port);
        let transport = self.host.transport.clone();
        let agent = self.clone();
        Some(tokio::spawn(async move {
            tokio::select! {
                () = streams.serve(transport, addr) => {}
                () = agent.stopped() => {}
            }
        }))
    }

    /// The mem-agent, when `agent.mem_agent_enable` was set, once the start work is done (it
    /// reads the cgroup hierarchy).
    fn start_mem_agent(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        let mem_agent = self.guest.mem_agent().ok()?.clone();
        let agent = self.clone();
        Some(tokio::spawn(async move {
            tokio::select! {
                _ = agent.once_ready(mem_agent.run(agent.host.clone())) => {}
                () = agent.stopped() => {}
            }
        }))
    }

    /// Runs `work` once the start work is done; never when it failed.
    async fn once_ready<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        self.ready.wait().await.ok()?;
        Some(work.await)
    }

    /// The debug console the configuration asks for, if a shell is there.
    fn start_console(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        let (mode, warning) = console_mode(&self.config);
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        if mode == ConsoleMode::Off {
            return None;
        }
        let Some(shell) = find_shell(&self.host) else {
            tracing::warn!(searched = ?SHELLS, "no shell in the guest: no debug console");
            return None;
        };
        let host = self.host.clone();
        let agent = self.clone();
        // The port listens at once; its sessions, which need /dev/pts, wait for the start work.
        let serve = async move {
            match mode {
                ConsoleMode::Port(port) => {
                    let addr = agent.config.server_addr.port_addr(port);
                    match listen_port(&host, &addr, shell) {
                        Ok(incoming) => {
                            agent
                                .once_ready(serve_sessions(host, incoming, shell))
                                .await;
                        }
                        Err(e) => tracing::warn!(error = %e, port, "debug console unavailable"),
                    }
                }
                ConsoleMode::Console => {
                    agent.once_ready(serve_console(host, shell)).await;
                }
                ConsoleMode::Off => {}
            }
        };
        let agent = self.clone();
        Some(tokio::spawn(async move {
            tokio::select! {
                _ = serve => {}
                _ = agent.stopped() => {}
            }
        }))
    }

    /// The host ports of the passfd streams accepted and not yet taken by a request, sorted
    /// (none without a passfd listener).
    pub fn passfd_waiting(&self) -> Vec<u32> {
        self.passfd
            .as_ref()
            .map(|p| p.waiting())
            .unwrap_or_default()
    }

    /// The configuration the agent runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The OS facilities the agent runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The devices the kernel announced, and pending waits for more.
    pub fn devices(&self) -> &Arc<DeviceWatcher> {
        &self.devices
    }

    /// What device lookups and handlers need: the watcher, sysfs and `agent.hotplug_timeout`.
    pub fn device_context(&self) -> DeviceContext {
        self.device_ctx.clone()
    }

    /// The sandbox's storages: drivers and the refcount table by mount point.
    pub fn storages(&self) -> &Arc<Storages> {
        &self.storages
    }

    /// The sandbox: shared namespaces, DNS, guest hooks.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The containers and their processes.
    pub fn containers(&self) -> &Arc<Containers> {
        &self.containers
    }

    /// The guest's interfaces, routes, neighbours and packet filter.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    /// The guest services' state: metrics, mem-agent.
    pub fn guest(&self) -> &Guest {
        &self.guest
    }

    /// Whether the start work deferred past listening is done; the AgentService RPCs wait for
    /// it.
    pub fn readiness(&self) -> &Readiness {
        &self.ready
    }

    /// Asks whoever runs the agent to stop it (DestroySandbox).
    pub fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once a stop has been requested.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        // The sender lives in `self`, so `wait_for` can only end with the value set.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
