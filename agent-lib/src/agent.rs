//! The agent: its configuration, the host it runs on, and the subsystems built over them.

use tokio::sync::watch;

use crate::config::Config;
use crate::host::Host;

/// One agent instance. Built once by the binary or a harness, shared by the RPC handlers.
#[derive(Debug)]
pub struct Agent {
    config: Config,
    host: Host,
    stop: watch::Sender<bool>,
}

impl Agent {
    /// An agent over `host`, configured by `config`.
    pub fn new(config: Config, host: Host) -> Self {
        let (stop, _) = watch::channel(false);
        Agent { config, host, stop }
    }

    /// The configuration the agent runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The OS facilities the agent runs on.
    pub fn host(&self) -> &Host {
        &self.host
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
