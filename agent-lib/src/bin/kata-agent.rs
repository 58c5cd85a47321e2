//! `kata-agent`: the guest agent binary. Reads its configuration, sets up logging, builds the
//! real host, does the init work when it is PID 1, and serves ttrpc until told to stop.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use kata_agent::config::{self, Loaded};
use kata_agent::host::{CgroupVersion, Host, Netlink, ServerAddr};
use kata_agent::linux::{
    LinuxCgroups, LinuxFileTree, LinuxLauncher, LinuxMounter, LinuxSysfs, LinuxSystem,
    LinuxTransport, NetlinkUevents, ReapMode, RtNetlink, set_core_dumps,
};
use kata_agent::logging::{JsonFields, KataJsonFormat, LOG_BUFFER, LogForwarder, log_port};
use kata_agent::ready::Readiness;
use kata_agent::rpc::AGENT_VERSION;
use kata_agent::startup::{self, StartClock};
use kata_agent::telemetry::{SpanLayer, SpanRecord, collector_addr, export};
use kata_agent::{Agent, init};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Finished spans waiting for the exporter; more are dropped.
const SPAN_QUEUE: usize = 1024;

const USAGE: &str = "Kata Containers guest agent

Usage: kata-agent [OPTIONS]

Options:
  -c, --config <FILE>  A TOML configuration file; it overrides the kernel command line
  -h, --help           Print help
  -V, --version        Print version
";

/// The command line. Parsed by hand: one option does not need an argument parser's code in
/// the agent's memory.
#[derive(Debug, Default)]
struct Args {
    /// A TOML configuration file; it overrides the kernel command line.
    config: Option<PathBuf>,
}

/// What the command line asks for.
enum Command {
    Run(Args),
    Print(String),
}

impl Args {
    fn parse(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Command, String> {
        let mut parsed = Args::default();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            match text.as_ref() {
                "-h" | "--help" => return Ok(Command::Print(USAGE.into())),
                "-V" | "--version" => {
                    return Ok(Command::Print(format!(
                        "kata-agent {}\n",
                        env!("CARGO_PKG_VERSION")
                    )));
                }
                "-c" | "--config" => {
                    let file = args
                        .next()
                        .ok_or_else(|| format!("{text} needs a value: --config <FILE>"))?;
                    parsed.config = Some(file.into());
                }
                _ => match text.strip_prefix("--config=") {
                    Some(file) => parsed.config = Some(file.into()),
                    None => return Err(format!("unexpected argument {text:?}\n\n{USAGE}")),
                },
            }
        }
        Ok(Command::Run(parsed))
    }
}

fn main() -> ExitCode {
    let clock = StartClock::new();
    // `kata-agent init`: the container setup helper, single-threaded, before anything else.
    if let Some(code) = kata_agent::linux::run_if_helper() {
        return code;
    }
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("kata-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kata-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let init_mode = std::process::id() == 1;
    let result = runtime.block_on(run(args, init_mode, clock));
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "agent failed");
        eprintln!("kata-agent: {e:#}");
    }
    drop(runtime);
    if init_mode {
        power_off();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

async fn run(args: Args, init_mode: bool, mut clock: StartClock) -> anyhow::Result<()> {
    clock.step("runtime");
    let sysfs = Arc::new(LinuxSysfs::new("/"));
    let mounter = Arc::new(LinuxMounter::new());
    if init_mode {
        // /proc/cmdline, where the configuration lives, needs /proc first; the other mounts
        // wait until the agent listens.
        init::mount_proc(&*mounter, &*sysfs).context("init mounts")?;
        clock.step("proc_mount");
    }
    let loaded = load_config(args.config.as_deref());
    let log_port = log_port(&loaded.config);
    clock.step("config");
    let logging = set_up_logging(&loaded, matches!(log_port, Ok(Some(_))));
    loaded.log_warnings();
    let config = loaded.config;
    if let Err(warning) = &log_port {
        tracing::warn!("{warning}");
    }
    if let Err(e) = set_core_dumps(config.dev_mode) {
        tracing::warn!(error = %e, dev_mode = config.dev_mode, "cannot set core dumps");
    }
    tracing::info!(
        version = AGENT_VERSION,
        init_mode,
        server_addr = %config.server_addr,
        "announce"
    );
    clock.step("logging");

    match kata_agent::linux::raise_nofile_limit(init_mode) {
        Ok((soft, hard)) => tracing::info!(soft, hard, "RLIMIT_NOFILE raised"),
        Err(e) => tracing::warn!(error = %e, "cannot raise RLIMIT_NOFILE"),
    }
    clock.step("rlimit");

    let v2 = config.cgroup_v2();
    let cgroups = Arc::new(LinuxCgroups::unverified(if v2 {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }));
    let host = build_host(mounter.clone(), sysfs.clone(), cgroups.clone(), &mut clock)?;
    let deferred = Deferred {
        mounter,
        sysfs,
        cgroups,
        netlink: host.netlink.clone(),
        init_mode,
        v2,
    };
    let addr = config.server_addr.clone();
    ship_logs_and_spans(logging, log_port, &host, &addr);
    let agent = Arc::new(Agent::with_readiness(config, host, Readiness::pending()));
    clock.step("agent");
    let work = deferred.run(clock.origin());
    let server = startup::serve_first(agent.clone(), &addr, work)
        .await
        .with_context(|| format!("cannot serve on {addr}"))?;
    clock.step("serve");
    tracing::info!(since_start_us = clock.elapsed_us(), steps = %clock, "start steps");
    let tasks = agent.start();

    wait_for_stop(&agent).await?;
    server
        .shutdown()
        .await
        .context("stopping the ttrpc server")?;
    agent.request_stop();
    for task in tasks {
        let _ = task.await;
    }
    if let Some(Err(failed)) = agent.readiness().outcome() {
        return Err(failed.into());
    }
    tracing::info!("stopped");
    Ok(())
}

/// The start work no Health call needs, done once the agent listens; AgentService calls wait
/// for it (see [`startup::serve_first`]).
struct Deferred {
    mounter: Arc<LinuxMounter>,
    sysfs: Arc<LinuxSysfs>,
    cgroups: Arc<LinuxCgroups>,
    netlink: Arc<dyn Netlink>,
    init_mode: bool,
    v2: bool,
}

impl Deferred {
    /// In init mode: the other pseudo filesystems and the cgroup hierarchy (yielding between
    /// mounts, so Check is answered meanwhile), then the loopback link. In both modes: the
    /// check that the hierarchy mounted is the configured one.
    async fn run(self, origin: Instant) -> anyhow::Result<()> {
        let mut clock = StartClock::since(origin);
        if self.init_mode {
            let (mounter, sysfs) = (&*self.mounter, &*self.sysfs);
            init::mount_base(mounter, sysfs)
                .await
                .context("init mounts")?;
            clock.step("base_mounts");
            init::mount_cgroups(mounter, sysfs, sysfs, self.v2)
                .await
                .context("cgroup mounts")?;
            clock.step("cgroup_mounts");
        }
        self.cgroups.verify().context("cgroups")?;
        clock.step("cgroups");
        if self.init_mode {
            init::bring_up_loopback(&*self.netlink)
                .await
                .context("loopback")?;
            clock.step("loopback");
        }
        tracing::info!(since_start_us = clock.elapsed_us(), steps = %clock, "deferred start done");
        Ok(())
    }
}

/// The real seams; the cgroup seam is made by the caller, to verify it once mounted.
fn build_host(
    mounter: Arc<LinuxMounter>,
    sysfs: Arc<LinuxSysfs>,
    cgroups: Arc<LinuxCgroups>,
    clock: &mut StartClock,
) -> anyhow::Result<Host> {
    let netlink = Arc::new(RtNetlink::new().context("netlink")?);
    clock.step("netlink");
    let uevents = Arc::new(NetlinkUevents::new().context("uevent socket")?);
    clock.step("uevents");
    let launcher = Arc::new(LinuxLauncher::new(ReapMode::All).context("process launcher")?);
    clock.step("launcher");
    Ok(Host {
        mounter,
        netlink,
        uevents,
        cgroups,
        transport: Arc::new(LinuxTransport::new()),
        launcher,
        sysfs: sysfs.clone(),
        agent_files: sysfs,
        system: Arc::new(LinuxSystem::new()),
        files: Arc::new(LinuxFileTree::new("/")),
    })
}

/// Starts the span exporter (`agent.trace`) and the log forwarder (`agent.log_vport`).
fn ship_logs_and_spans(
    logging: Logging,
    log_port: Result<Option<u32>, String>,
    host: &Host,
    addr: &ServerAddr,
) {
    if let Some(spans) = logging.spans {
        let collector = collector_addr(addr);
        tracing::info!(%collector, "exporting traces");
        tokio::spawn(export(
            spans,
            host.transport.clone(),
            collector,
            "kata-agent",
        ));
    }
    if let (Some(forwarder), Ok(Some(port))) = (logging.forwarder, log_port) {
        let serve = forwarder.serve(host.transport.clone(), addr.port_addr(port));
        tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, port, "cannot forward the log");
            }
        });
    }
}

/// Until DestroySandbox, SIGTERM or SIGINT.
async fn wait_for_stop(agent: &Agent) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    tokio::select! {
        _ = agent.stopped() => tracing::info!("sandbox destroyed, stopping"),
        _ = sigterm.recv() => tracing::info!("SIGTERM, stopping"),
        _ = sigint.recv() => tracing::info!("SIGINT, stopping"),
    }
    Ok(())
}

fn load_config(cli_config: Option<&Path>) -> Loaded {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    config::load(
        &cmdline,
        cli_config,
        |name| std::env::var(name).ok(),
        |path| std::fs::read_to_string(path),
    )
}

/// What the subscriber feeds besides stdout.
struct Logging {
    /// The log's buffer for the host (`agent.log_vport`).
    forwarder: Option<LogForwarder>,
    /// Finished spans for the exporter (`agent.trace`).
    spans: Option<mpsc::Receiver<SpanRecord>>,
}

/// Installs the subscriber: JSON lines on stdout, or into a [`LogForwarder`] when the log goes
/// to the host; with `agent.trace`, a [`SpanLayer`] too. Developer mode logs at debug level at
/// least.
fn set_up_logging(loaded: &Loaded, forward: bool) -> Logging {
    let config = &loaded.config;
    let mut level = config.log_level.level_filter();
    if config.dev_mode {
        level = level.max(LevelFilter::DEBUG);
    }
    let forwarder = forward.then(|| LogForwarder::new(LOG_BUFFER));
    let writer = match &forwarder {
        Some(forwarder) => BoxMakeWriter::new(forwarder.clone()),
        None => BoxMakeWriter::new(std::io::stdout),
    };
    let log = tracing_subscriber::fmt::layer()
        .event_format(KataJsonFormat::new(AGENT_VERSION))
        .fmt_fields(JsonFields)
        .with_writer(writer)
        .with_filter(level);
    let (span_layer, spans) = if config.tracing {
        let (tx, rx) = mpsc::channel(SPAN_QUEUE);
        (
            Some(SpanLayer::new(tx).with_filter(LevelFilter::INFO)),
            Some(rx),
        )
    } else {
        (None, None)
    };
    let subscriber = tracing_subscriber::registry().with(log).with(span_layer);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("kata-agent: a log subscriber was already installed");
    }
    Logging { forwarder, spans }
}

/// PID 1 must not exit: flush the disks and power the guest off.
fn power_off() {
    nix::unistd::sync();
    let Err(e) = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    eprintln!("kata-agent: power off failed: {e}");
}
