//! How a real agent is started: the binary cargo built, its command line and environment, its
//! namespaces, the machine-wide lock of root agents, and the wait for its socket.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Serializes root agents across threads and processes (they share `/run` and cgroupfs).
const LOCK_FILE: &str = "/tmp/kata-agent-real-e2e.lock";

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
pub(crate) fn isolate(command: &mut Command, cgroup2: bool) {
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

/// The machine-wide lock of root agents.
pub(crate) fn exclusive() -> File {
    file_lock(LOCK_FILE)
}

/// An exclusive `flock` on `path` (created if need be), held until the returned file is
/// dropped; blocks meanwhile. Serializes tests across threads and processes.
pub fn file_lock(path: &str) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open the lock file {path}: {e}"));
    // SAFETY: flock on a descriptor owned by `file`, which outlives the lock.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {path}: {}", std::io::Error::last_os_error());
    file
}

/// Waits until the agent listens on `sock`; an error if it exits or takes over 20 s.
pub(crate) async fn wait_listening(child: &mut Child, sock: &Path) -> Result<(), String> {
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
