//! The real `kata-agent` binary outside a VM, driven only over ttrpc, as a Kata runtime would.
//!
//! The agent runs as root in its own mount, UTS and network namespaces (as it would be in a VM:
//! its mounts, hostname and interfaces are its own), on `unix://<tempdir>/agent.sock`, with
//! its log in `<tempdir>/agent.log` (printed when a test fails). It still shares the host's
//! cgroup hierarchies and `/run`, so [`RealAgent`]s take a file lock: one at a time on this
//! machine. Dropping one (also when a test panics) kills the agent and removes what it may have
//! left: the processes and directories of the cgroups of its containers, their bundles under
//! `/run/kata-containers`, any mount under its folders in the host's namespace, and the
//! `/run` folders it created.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agent_harness::AgentClient;
use agent_protos::{agent as pb, oci};

use crate::host_state::{cgroup_dirs, detach_mounts_under, kill_cgroup, stat_state};
use crate::{lock, root, rootfs, timed_ctx, wire};

/// The program of a sandbox's infra container (the runtime's pause container).
pub const PAUSE: [&str; 2] = ["sleep", "999999"];

/// Serializes real agents across threads and processes (they share `/run` and cgroupfs).
const LOCK_FILE: &str = "/tmp/kata-agent-real-e2e.lock";
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
    _lock: File,
}

/// The `kata-agent` binary cargo built next to the running test binary (`target/<profile>/`),
/// or `$KATA_AGENT_BIN`.
pub fn agent_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KATA_AGENT_BIN") {
        return PathBuf::from(path);
    }
    let test = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/kata-agent
    let path = test
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("kata-agent"))
        .expect("the test binary lies in target/<profile>/deps");
    assert!(
        path.exists(),
        "{} not built: run the tests of the kata-agent package, or set KATA_AGENT_BIN",
        path.display()
    );
    path
}

/// A `kata-agent` command serving on `unix://<dir>/agent.sock` with debug logs and nothing else
/// from this environment; with `--config <dir>/agent.toml` of contents `toml` when given.
pub fn agent_command(dir: &Path, toml: Option<&str>) -> Command {
    let sock = dir.join("agent.sock");
    let mut command = Command::new(agent_binary());
    command
        .env_clear()
        .env(
            "KATA_AGENT_SERVER_ADDR",
            format!("unix://{}", sock.display()),
        )
        .env("KATA_AGENT_LOG_LEVEL", "debug");
    if let Some(toml) = toml {
        let file = dir.join("agent.toml");
        fs::write(&file, toml).unwrap();
        command.arg("--config").arg(file);
    }
    command
}

/// Makes `command` start in its own mount (rprivate), UTS and network namespaces, killed
/// when the test dies; with `cgroup2`, a `cgroup2` hierarchy mounted over `/sys/fs/cgroup`.
fn isolate(command: &mut Command, cgroup2: bool) {
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWNET;
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let root = c"/";
            let rc = libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if cgroup2
                && libc::mount(
                    c"cgroup2".as_ptr(),
                    c"/sys/fs/cgroup".as_ptr(),
                    c"cgroup2".as_ptr(),
                    0,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A lock held until the returned file is dropped; blocks meanwhile.
fn exclusive() -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .expect("open the lock file");
    // SAFETY: flock on a descriptor owned by `file`, which outlives the lock.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {LOCK_FILE}: {}",
        std::io::Error::last_os_error()
    );
    file
}

impl RealAgent {
    /// Starts an agent for test `name` (ids are `e2e-<name>-<pid>-...`) and connects to it.
    pub async fn start(name: &str) -> RealAgent {
        Self::start_with(name, None, false).await
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
        Self::start_with(name, Some(toml), false).await
    }

    /// Like [`RealAgent::start`], on cgroup v2 on a cgroup v1 host: in the agent's mount
    /// namespace a `cgroup2` hierarchy (the host's unified one, with whichever controllers v1
    /// leaves free) is mounted over `/sys/fs/cgroup`, and the agent is configured for v2, so
    /// every cgroup v2 path of the real binary runs.
    pub async fn start_cgroup2(name: &str) -> RealAgent {
        Self::start_with(name, Some("unified_cgroup_hierarchy = true\n"), true).await
    }

    async fn start_with(name: &str, toml: Option<&str>, cgroup2: bool) -> RealAgent {
        root::require_root("a real agent with real containers");
        let lock = exclusive();
        let dir = tempfile::Builder::new()
            .prefix(&format!("kata-e2e-{name}-"))
            .tempdir()
            .unwrap();
        let new_run_dirs = RUN_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|d| !d.exists())
            .collect();
        let sock = dir.path().join("agent.sock");
        let log = File::create(dir.path().join("agent.log")).unwrap();
        let mut command = agent_command(dir.path(), toml);
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        isolate(&mut command, cgroup2);
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
        let status = self.wait_exit(Duration::from_secs(20)).await;
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

    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("the agent runs");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not exit after DestroySandbox"
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

/// Waits until the agent listens on `sock`; an error if it exits or takes over 20 s.
async fn wait_listening(child: &mut Child, sock: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("the agent exited before listening: {status}"));
        }
        if Instant::now() > deadline {
            return Err("the agent never listened".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
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
