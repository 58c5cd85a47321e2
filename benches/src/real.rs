//! A pod on real Linux: the agent in this process with the real mounter, cgroups, launcher
//! (containers set up by this executable re-run as `init`), sysfs and system seams, served on a
//! unix socket, with busybox containers. Needs root and busybox-static.
//!
//! The agent runs on a dedicated thread inside new mount and UTS namespaces with a private
//! tmpfs on `/run` (bundles, pinned namespaces), so nothing it mounts or names reaches the host;
//! netlink and uevents are the fakes (the benches need neither). The executable's `main` must
//! call [`kata_agent::linux::run_if_helper`] first.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use agent_fakes::FakeHost;
use agent_harness::AgentClient;
use anyhow::{Context, bail};
use kata_agent::Agent;
use kata_agent::config::Config;
use kata_agent::host::ServerAddr;
use kata_agent::linux::{
    LinuxCgroups, LinuxLauncher, LinuxMounter, LinuxSysfs, LinuxSystem, LinuxTransport, ReapMode,
};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use tokio::sync::oneshot;

use crate::{calls, cgroup2, requests};

const APPLETS: [&str; 3] = ["sh", "true", "sleep"];

/// Why real-Linux benches cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (namespaces, mounts, cgroups)".into());
    }
    if busybox().is_none() {
        return Some("needs busybox (apt-get install busybox-static)".into());
    }
    None
}

fn busybox() -> Option<PathBuf> {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A busybox rootfs (`sh`, `true`, `sleep`) in a temporary folder.
fn rootfs() -> anyhow::Result<tempfile::TempDir> {
    let busybox = busybox().context("busybox not found")?;
    let dir = tempfile::Builder::new().prefix("bench-rootfs-").tempdir()?;
    let root = dir.path();
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    fs::copy(busybox, root.join("bin/busybox"))?;
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet))?;
    }
    Ok(dir)
}

/// The agent's thread: told to stop and joined on drop.
struct AgentThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl AgentThread {
    fn join(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => bail!("the agent thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for AgentThread {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            eprintln!("real-Linux pod: {e:#}");
        }
    }
}

/// The agent on real Linux and a client connected to it, with the sandbox created.
pub struct RealPod {
    /// The client, connected over the unix socket.
    pub client: AgentClient,
    agent: AgentThread,
    rootfs: tempfile::TempDir,
    _sockets: tempfile::TempDir,
    next: u64,
    /// For a pod on cgroup v2: the host's root controllers, put back after the agent stops.
    _v2: Option<cgroup2::RootControllers>,
}

impl std::fmt::Debug for RealPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealPod")
            .field("rootfs", &self.rootfs.path())
            .finish_non_exhaustive()
    }
}

impl RealPod {
    /// Starts the agent on the host's cgroup hierarchy and creates the sandbox; call inside a
    /// tokio runtime.
    pub async fn start() -> anyhow::Result<RealPod> {
        Self::start_on(None).await
    }

    /// As [`RealPod::start`], with the agent on cgroup v2 ([`cgroup2`]).
    pub async fn start_v2() -> anyhow::Result<RealPod> {
        if let Some(why) = cgroup2::unavailable() {
            bail!("real-Linux pod on cgroup v2: {why}");
        }
        Self::start_on(Some(cgroup2::RootControllers::save()?)).await
    }

    async fn start_on(v2: Option<cgroup2::RootControllers>) -> anyhow::Result<RealPod> {
        if let Some(why) = unavailable() {
            bail!("real-Linux pod: {why}");
        }
        let mount_v2 = v2.is_some();
        let rootfs = rootfs()?;
        let sockets = tempfile::Builder::new().prefix("bench-agent-").tempdir()?;
        let path = sockets.path().join("agent.sock");
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel();
        let sock = path.clone();
        let thread = std::thread::Builder::new()
            .name("real-agent".into())
            .spawn(move || serve_isolated(&sock, mount_v2, ready_tx, stop_rx))?;
        let mut agent = AgentThread {
            stop: Some(stop),
            thread: Some(thread),
        };
        match ready_rx.await {
            Ok(result) => result?,
            Err(_) => {
                agent.join()?;
                bail!("the agent thread ended before serving");
            }
        }
        let client = AgentClient::connect(&format!("unix://{}", path.display()))
            .await
            .context("connect")?;
        calls::create_sandbox(&client)
            .await
            .context("CreateSandbox")?;
        Ok(RealPod {
            client,
            agent,
            rootfs,
            _sockets: sockets,
            next: 0,
            _v2: v2,
        })
    }

    /// A container id unique to this process.
    pub fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("bench-{}-{prefix}{}", std::process::id(), self.next)
    }

    /// Creates and starts busybox container `cid` running `sleep`.
    pub async fn run(&self, cid: &str) -> anyhow::Result<()> {
        let req = requests::create_container(
            cid,
            &["sleep", "1000000"],
            self.rootfs.path(),
            requests::standard_mounts(),
        );
        calls::create_start(&self.client, &req)
            .await
            .with_context(|| format!("create and start {cid}"))
    }

    /// Removes container `cid` (kills it, unmounts its bundle, removes its cgroup).
    pub async fn remove(&self, cid: &str) -> anyhow::Result<()> {
        calls::remove(&self.client, cid)
            .await
            .with_context(|| format!("remove {cid}"))
    }

    /// ExecProcess + WaitProcess of `true` in `cid`.
    pub async fn exec_true(&mut self, cid: &str) -> anyhow::Result<()> {
        self.next += 1;
        let eid = format!("e{}", self.next);
        match calls::exec_wait(&self.client, cid, &eid, &["true"]).await {
            Ok(0) => Ok(()),
            Ok(status) => bail!("exec {eid} exited {status}"),
            Err(e) => Err(e).with_context(|| format!("exec {eid}")),
        }
    }

    /// The pid of container `cid`'s init: the child of this process in the cgroup `/<cid>`.
    pub fn init_pid(&self, cid: &str) -> anyhow::Result<i32> {
        let me = std::process::id().to_string();
        let suffix = format!(":/{cid}");
        let found: Vec<i32> = fs::read_dir("/proc")?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned));
                ppid.as_deref() == Some(me.as_str())
                    && fs::read_to_string(format!("/proc/{pid}/cgroup"))
                        .is_ok_and(|c| c.lines().any(|l| l.ends_with(&suffix)))
            })
            .collect();
        match found[..] {
            [pid] => Ok(pid),
            _ => bail!("container {cid}: init pids {found:?}, expected one"),
        }
    }

    /// Destroys the sandbox and stops the agent (its namespaces go with its thread).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let destroyed = calls::destroy_sandbox(&self.client)
            .await
            .context("DestroySandbox");
        destroyed.and(self.agent.join())
    }
}

/// The agent thread: private namespaces, a runtime, the agent served until `stop`.
fn serve_isolated(
    sock: &Path,
    v2: bool,
    ready: oneshot::Sender<anyhow::Result<()>>,
    stop: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    if let Err(e) = isolate(v2) {
        let _ = ready.send(Err(anyhow::anyhow!("{e:#}")));
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let agent = match agent() {
            Ok(agent) => agent,
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        let tasks = agent.start();
        let server =
            match kata_agent::rpc::serve(agent.clone(), &ServerAddr::Unix(sock.into())).await {
                Ok(server) => server,
                Err(e) => {
                    let _ = ready.send(Err(anyhow::Error::new(e).context("serve")));
                    return Ok(());
                }
            };
        let _ = ready.send(Ok(()));
        let _ = stop.await;
        let result = server.shutdown().await.context("stop serving");
        agent.request_stop();
        for task in tasks {
            let _ = task.await;
        }
        result
    })
}

/// New mount and UTS namespaces for this thread, `/` private, a tmpfs on `/run`; with `v2`,
/// the cgroup2 hierarchy on `/sys/fs/cgroup`.
fn isolate(v2: bool) -> anyhow::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).context("unshare")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private")?;
    mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755"),
    )
    .context("mount a tmpfs on /run")?;
    if v2 {
        mount(
            Some("cgroup2"),
            "/sys/fs/cgroup",
            Some("cgroup2"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .context("mount cgroup2 on /sys/fs/cgroup")?;
    }
    Ok(())
}

/// The agent over the real seams (netlink and uevents faked); call inside the runtime.
fn agent() -> anyhow::Result<Arc<Agent>> {
    let fake = FakeHost::new();
    let mut host = fake.host();
    let helper = std::env::current_exe().context("current_exe")?;
    host.mounter = Arc::new(LinuxMounter::new());
    host.cgroups = Arc::new(LinuxCgroups::detect());
    host.transport = Arc::new(LinuxTransport::new());
    host.launcher =
        Arc::new(LinuxLauncher::with_helper(ReapMode::Registered, helper).context("launcher")?);
    let files = Arc::new(LinuxSysfs::new("/"));
    host.sysfs = files.clone();
    host.agent_files = files;
    host.system = Arc::new(LinuxSystem::new());
    Ok(Arc::new(Agent::new(Config::default(), host)))
}
