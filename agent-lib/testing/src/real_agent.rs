//! The real `kata-agent` binary outside a VM, driven only over its sockets, as a Kata runtime
//! would: the real-binary level's one fixture, in two modes.
//!
//! - **Contained** ([`RealAgent::start`] and its variants; root, real containers): the agent runs
//!   as root in its own mount, UTS and network namespaces (as it would be in a VM: its mounts,
//!   hostname and interfaces are its own). It still shares the host's cgroup hierarchies and
//!   `/run`, so these agents take a file lock: one at a time on this machine. Dropping one (also
//!   when a test panics) kills the agent and removes what it may have left: the processes and
//!   directories of the cgroups of its containers, their bundles under `/run/kata-containers`,
//!   any mount under its folders in the host's namespace, and the `/run` folders it created.
//! - **Unprivileged** ([`RealAgent::unprivileged`]; no root, no containers): the binary's own
//!   CLI, log, ttrpc server and operator ports ([`RealAgent::connect_port`]), as the test's
//!   user in the test's namespaces, any number at once.
//!
//! Either way the agent serves on `unix://<tempdir>/agent.sock` with its log in
//! `<tempdir>/agent.log` (printed when a test fails), and [`RealAgent::client`] is connected.

use std::fs::{self, File};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agent_harness::AgentClient;
use agent_protos::{agent as pb, oci};

use crate::host_state::{cgroup_dirs, detach_mounts_under, kill_cgroup, stat_state};
use crate::launch::{agent_command, exclusive, isolate, wait_listening};
use crate::{lock, root, rootfs, timed_ctx, wire};

pub use crate::launch::agent_binary;

/// The program of a sandbox's infra container (the runtime's pause container).
pub const PAUSE: [&str; 2] = ["sleep", "999999"];

/// How the agent is started.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// As root in namespaces of its own, one at a time; on a `cgroup2` hierarchy if asked.
    Contained { cgroup2: bool },
    /// As the test's user in the test's namespaces.
    Unprivileged,
}

/// The host folders a real agent writes to (bundles, pinned namespaces).
const RUN_DIRS: [&str; 2] = ["/run/kata-containers", "/run/sandbox-ns"];
/// A running agent, its client and everything to clean up.
#[derive(Debug)]
pub struct RealAgent {
    child: Option<Child>,
    pid: i32,
    /// The ttrpc client.
    pub client: AgentClient,
    prefix: String,
    /// Container ids handed out (their cgroups and bundles are cleaned up on drop).
    ids: Mutex<Vec<String>>,
    /// The folders of [`RUN_DIRS`] that did not exist before the agent started.
    new_run_dirs: Vec<PathBuf>,
    dir: tempfile::TempDir,
    /// The machine-wide lock of contained agents.
    _lock: Option<File>,
}

impl RealAgent {
    /// Starts an agent for test `name` (ids are `e2e-<name>-<pid>-...`) and connects to it.
    pub async fn start(name: &str) -> RealAgent {
        Self::start_with(name, None, Mode::Contained { cgroup2: false }).await
    }

    /// [`RealAgent::start`], then CreateSandbox of `hostname` with id [`RealAgent::sandbox_id`].
    pub async fn with_sandbox(name: &str, hostname: &str) -> RealAgent {
        let agent = Self::start(name).await;
        let sandbox = agent.id("sb");
        agent.create_sandbox(&sandbox, hostname).await;
        agent
    }

    /// [`RealAgent::with_sandbox`], then the sandbox's infra container (id: the sandbox id)
    /// running [`PAUSE`] in a busybox rootfs, as the runtime makes a pod.
    pub async fn with_infra(name: &str, hostname: &str) -> RealAgent {
        let agent = Self::with_sandbox(name, hostname).await;
        let infra = agent.rootfs("infra");
        agent
            .run_container(&agent.sandbox_id(), wire::spec(&infra, &PAUSE, false, None))
            .await;
        agent
    }

    /// The sandbox id [`RealAgent::with_sandbox`] gives.
    pub fn sandbox_id(&self) -> String {
        format!("{}-sb", self.prefix)
    }

    /// Like [`RealAgent::start`], with a TOML configuration file of contents `toml`.
    pub async fn start_with_config(name: &str, toml: &str) -> RealAgent {
        Self::start_with(name, Some(toml), Mode::Contained { cgroup2: false }).await
    }

    /// Like [`RealAgent::start`], on cgroup v2 on a cgroup v1 host: in the agent's mount
    /// namespace a `cgroup2` hierarchy (the host's unified one, with whichever controllers v1
    /// leaves free) is mounted over `/sys/fs/cgroup`, and the agent is configured for v2, so
    /// every cgroup v2 path of the real binary runs.
    pub async fn start_cgroup2(name: &str) -> RealAgent {
        let toml = Some("unified_cgroup_hierarchy = true\n");
        Self::start_with(name, toml, Mode::Contained { cgroup2: true }).await
    }

    /// An unprivileged agent for test `name` with the configuration file `toml`: no root, no
    /// namespaces or lock of its own, no containers; for the binary's CLI, log and ports.
    pub async fn unprivileged(name: &str, toml: &str) -> RealAgent {
        Self::start_with(name, Some(toml), Mode::Unprivileged).await
    }

    async fn start_with(name: &str, toml: Option<&str>, mode: Mode) -> RealAgent {
        let (lock, new_run_dirs) = match mode {
            Mode::Contained { .. } => {
                root::require_root("a real agent with real containers");
                let lock = exclusive();
                let new = RUN_DIRS.iter().map(PathBuf::from).filter(|d| !d.exists());
                (Some(lock), new.collect())
            }
            Mode::Unprivileged => (None, Vec::new()),
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("kata-e2e-{name}-"))
            .tempdir()
            .unwrap();
        let sock = dir.path().join("agent.sock");
        let log = File::create(dir.path().join("agent.log")).unwrap();
        let mut command = agent_command(dir.path(), toml);
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Mode::Contained { cgroup2 } = mode {
            isolate(&mut command, cgroup2);
        }
        let mut child = command.spawn().expect("start kata-agent");
        let pid = i32::try_from(child.id()).unwrap();
        let log_path = dir.path().join("agent.log");
        if let Err(why) = wait_listening(&mut child, &sock).await {
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            panic!("{why}\n{log}");
        }
        let client = AgentClient::connect(&format!("unix://{}", sock.display()))
            .await
            .expect("connect to the agent");
        RealAgent {
            child: Some(child),
            pid,
            client,
            prefix: format!("e2e-{name}-{}", std::process::id()),
            ids: Mutex::new(Vec::new()),
            new_run_dirs,
            dir,
            _lock: lock,
        }
    }

    /// The agent's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The agent's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// A fresh folder for this test (removed on drop).
    pub fn path(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::create_dir_all(&path).unwrap();
        path
    }

    /// A busybox rootfs in this test's folder.
    pub fn rootfs(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        rootfs::populate(&path);
        path
    }

    /// A unique container id, whose cgroup and bundle are cleaned up on drop.
    pub fn id(&self, name: &str) -> String {
        let id = format!("{}-{name}", self.prefix);
        lock(&self.ids).push(id.clone());
        id
    }

    /// The container ids handed out so far, in order.
    pub fn ids_so_far(&self) -> Vec<String> {
        lock(&self.ids).clone()
    }

    /// What the agent printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// The agent's ttrpc address.
    pub fn addr(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The unix socket serving the agent's vsock port `port` (`<socket>_<port>`).
    pub fn port_socket(&self, port: u32) -> PathBuf {
        self.dir.path().join(format!("agent.sock_{port}"))
    }

    /// Connects to port `port`, waiting up to 20 s for it to listen; reads time out after 30 s.
    /// Blocks the thread (for tests on a thread of their own, outside the runtime).
    pub fn connect_port(&self, port: u32) -> UnixStream {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match UnixStream::connect(self.port_socket(port)) {
                Ok(stream) => {
                    let timeout = Some(Duration::from_secs(30));
                    stream.set_read_timeout(timeout).unwrap();
                    return stream;
                }
                Err(e) => assert!(Instant::now() < deadline, "port {port}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM, waits up to 10 s for the agent to exit; its exit status and its log.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = nix::unistd::Pid::from_raw(self.pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(io::Error::from)
            .expect("SIGTERM the agent");
        let status = self.wait_exit(Duration::from_secs(10), "SIGTERM").await;
        (status, self.log())
    }

    // ---- RPCs ----

    /// CreateSandbox with `hostname` and `sandbox_id`, as the runtime does first.
    pub async fn create_sandbox(&self, sandbox_id: &str, hostname: &str) {
        self.client
            .create_sandbox(sandbox_id, hostname)
            .await
            .expect("CreateSandbox");
    }

    /// CreateContainer of `spec` as `cid`.
    pub async fn create_container(
        &self,
        cid: &str,
        spec: oci::Spec,
        sandbox_pidns: bool,
    ) -> ttrpc::Result<()> {
        let req = wire::create_request(cid, spec, sandbox_pidns);
        self.client.create_container(&req).await
    }

    /// StartContainer.
    pub async fn start_container(&self, cid: &str) -> ttrpc::Result<()> {
        self.client.start_container(cid).await
    }

    /// CreateContainer + StartContainer of `spec`.
    pub async fn run_container(&self, cid: &str, spec: oci::Spec) {
        self.create_container(cid, spec, false)
            .await
            .expect("CreateContainer");
        self.start_container(cid).await.expect("StartContainer");
    }

    /// ExecProcess of `args` as `eid`; panics on failure.
    pub async fn exec(&self, cid: &str, eid: &str, args: &[&str], terminal: bool) {
        self.client
            .exec_process(cid, eid, wire::process(args, terminal))
            .await
            .unwrap_or_else(|e| panic!("ExecProcess {eid} {args:?}: {e:?}"));
    }

    /// SignalProcess.
    pub async fn signal(&self, cid: &str, eid: &str, signal: i32) -> ttrpc::Result<()> {
        let signal = u32::try_from(signal).unwrap();
        self.client.signal_process(cid, eid, signal).await
    }

    /// Exec `eid` of `sh -c script` in `cid`: its stdout and exit code.
    pub async fn sh(&self, cid: &str, eid: &str, script: &str) -> (String, i32) {
        self.exec(cid, eid, &["sh", "-c", script], false).await;
        let out = self.read_all(cid, eid, false).await;
        (out, self.wait(cid, eid).await)
    }

    /// WaitProcess: the exit code.
    pub async fn wait(&self, cid: &str, eid: &str) -> i32 {
        self.client
            .wait_process(cid, eid)
            .await
            .unwrap_or_else(|e| panic!("WaitProcess {eid}: {e:?}"))
    }

    /// One ReadStdout (`stderr`: ReadStderr); empty is end of stream.
    pub async fn read(&self, cid: &str, eid: &str, stderr: bool) -> Vec<u8> {
        self.client
            .read_output(cid, eid, stderr)
            .await
            .expect("ReadStdout/ReadStderr")
    }

    /// Reads stdout (or stderr) until end of stream.
    pub async fn read_all(&self, cid: &str, eid: &str, stderr: bool) -> String {
        let out = self
            .client
            .read_to_end(cid, eid, stderr)
            .await
            .expect("ReadStdout/ReadStderr");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// WriteStdin; empty `data` closes stdin.
    pub async fn write_stdin(&self, cid: &str, eid: &str, data: &[u8]) -> u32 {
        self.client
            .write_stdin(cid, eid, data)
            .await
            .expect("WriteStdin")
    }

    /// TtyWinResize of `eid`'s terminal.
    pub async fn resize(&self, cid: &str, eid: &str, rows: u32, cols: u32) {
        self.client
            .tty_win_resize(cid, eid, rows, cols)
            .await
            .expect("TtyWinResize");
    }

    /// PauseContainer.
    pub async fn pause(&self, cid: &str) {
        self.client
            .pause_container(cid)
            .await
            .expect("PauseContainer");
    }

    /// ResumeContainer.
    pub async fn resume(&self, cid: &str) {
        self.client
            .resume_container(cid)
            .await
            .expect("ResumeContainer");
    }

    /// UpdateContainer with `resources`.
    pub async fn update(&self, cid: &str, resources: oci::LinuxResources) {
        self.client
            .update_container(cid, resources)
            .await
            .expect("UpdateContainer");
    }

    /// StatsContainer.
    pub async fn stats(&self, cid: &str) -> pb::StatsContainerResponse {
        self.client
            .stats_container(cid)
            .await
            .expect("StatsContainer")
    }

    /// RemoveContainer with a 30 s timeout.
    pub async fn remove(&self, cid: &str) {
        self.client
            .remove_container(cid, 30)
            .await
            .expect("RemoveContainer");
    }

    /// DestroySandbox, then waits for the agent to exit on its own and checks that it did so
    /// cleanly, removed its socket and left nothing in cgroupfs or `/run`. Returns its log.
    pub async fn destroy_and_exit(mut self) -> String {
        let reply = self
            .client
            .agent
            .destroy_sandbox(timed_ctx(), &pb::DestroySandboxRequest::default())
            .await;
        if let Err(e) = reply {
            panic!("DestroySandbox: {e:?}\n{}", self.log());
        }
        let status = self
            .wait_exit(Duration::from_secs(20), "DestroySandbox")
            .await;
        let log = self.log();
        assert!(status.success(), "the agent exited with {status}\n{log}");
        assert!(
            !self.dir.path().join("agent.sock").exists(),
            "the socket was left behind"
        );
        let ids = self.ids_so_far();
        for cid in &ids {
            assert_eq!(
                cgroup_dirs(cid),
                Vec::<PathBuf>::new(),
                "cgroups of {cid} left"
            );
            let bundle = Path::new(RUN_DIRS[0]).join(cid);
            assert!(!bundle.exists(), "{} left", bundle.display());
        }
        for dir in &self.new_run_dirs {
            let left: Vec<_> = fs::read_dir(dir)
                .map(|d| d.filter_map(|e| Some(e.ok()?.file_name())).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{} still holds {left:?}", dir.display());
        }
        log
    }

    async fn wait_exit(&mut self, limit: Duration, after: &str) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("the agent runs");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not exit after {after}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // ---- observations of the host ----

    /// The agent's mount table.
    pub fn mountinfo(&self) -> String {
        fs::read_to_string(format!("/proc/{}/mountinfo", self.pid)).expect("agent mountinfo")
    }

    /// The pids and states (`R`, `S`, `Z`...) of the agent's children.
    pub fn children(&self) -> Vec<(i32, char)> {
        let me = self.pid.to_string();
        let mut out = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some((state, ppid)) = stat_state(pid)
                && ppid == me
            {
                out.push((pid, state));
            }
        }
        out
    }
}

impl Drop for RealAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- agent log (last 60 lines) ----");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let ids = self.ids_so_far();
        for cid in &ids {
            kill_cgroup(cid);
        }
        let mut roots: Vec<PathBuf> = vec![self.dir.path().to_owned()];
        roots.extend(ids.iter().map(|cid| Path::new(RUN_DIRS[0]).join(cid)));
        roots.extend(self.new_run_dirs.iter().cloned());
        detach_mounts_under(&roots);
        for cid in &ids {
            let _ = fs::remove_dir_all(Path::new(RUN_DIRS[0]).join(cid));
        }
        for dir in &self.new_run_dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
}
