//! What the agent logs and traces inside a scenario, captured as the binary would ship it:
//! with `agent.log_vport` its JSON log lines go through a [`LogForwarder`] to that port, and
//! with `agent.trace` its spans through the exporter to the host's collector, both on the fake
//! transport. The subscriber is this thread's default (a scenario runs on a single-threaded
//! runtime), so parallel scenarios do not mix.

use std::sync::Arc;

use kata_agent::config::Config;
use kata_agent::host::Transport;
use kata_agent::logging::{JsonFields, KataJsonFormat, LOG_BUFFER, LogForwarder, log_port};
use kata_agent::rpc::AGENT_VERSION;
use kata_agent::telemetry::{SpanLayer, collector_addr, export};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

/// The capture of one guest; dropping it restores the thread's previous subscriber.
pub struct Capture {
    _guard: DefaultGuard,
    /// The log forwarder and the span exporter.
    pub tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").finish_non_exhaustive()
    }
}

/// Installs the capture `config` asks for (none without a log port or tracing). Needs the
/// scenario's runtime.
pub fn start(config: &Config, transport: Arc<dyn Transport>) -> Option<Capture> {
    let port = log_port(config).ok().flatten();
    if port.is_none() && !config.tracing {
        return None;
    }
    let forwarder = port.map(|_| LogForwarder::new(LOG_BUFFER));
    let log = forwarder.clone().map(|forwarder| {
        tracing_subscriber::fmt::layer()
            .event_format(KataJsonFormat::new(AGENT_VERSION))
            .fmt_fields(JsonFields)
            .with_writer(forwarder)
            .with_filter(config.log_level.level_filter())
    });
    let (spans, rx) = if config.tracing {
        let (tx, rx) = mpsc::channel(1024);
        (
            Some(SpanLayer::new(tx).with_filter(LevelFilter::INFO)),
            Some(rx),
        )
    } else {
        (None, None)
    };
    let subscriber = tracing_subscriber::registry().with(log).with(spans);
    let guard = tracing::subscriber::set_default(subscriber);
    let mut tasks = Vec::new();
    let addr = &config.server_addr;
    if let (Some(forwarder), Some(port)) = (forwarder, port) {
        let serve = forwarder.serve(transport.clone(), addr.port_addr(port));
        tasks.push(tokio::spawn(async move {
            let _ = serve.await;
        }));
    }
    if let Some(rx) = rx {
        tasks.push(tokio::spawn(export(
            rx,
            transport,
            collector_addr(addr),
            "kata-agent",
        )));
    }
    Some(Capture {
        _guard: guard,
        tasks,
    })
}
