//! The setup helper: `kata-agent init`, executed by the agent from its sealed image. It reads
//! its configuration, builds the container, reports, waits for `Go`, executes.

use std::ffi::OsStr;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use super::error::{Result, SetupError};
use super::exec::{self, Ready};
use super::hooks::HookState;
use super::protocol::{self, Order, Report};
use super::seccomp::{self, Compiled};
use super::{HelperConfig, SOCKET_FD, lsm, namespaces, rootfs};

/// The argument that makes `kata-agent` the setup helper (as in Kata: `kata-agent init`).
pub const HELPER_ARG: &str = "init";

/// Runs the setup helper if the process was started as one (`kata-agent init`, with the agent's
/// socket on fd 3), and returns its exit code; otherwise `None`. The agent binary calls this
/// first thing in `main`, before any runtime, thread or logger exists.
pub fn run_if_helper() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    let _ = args.next();
    if args.next().as_deref() != Some(OsStr::new(HELPER_ARG)) || args.next().is_some() {
        return None;
    }
    // The exec made the helper dumpable again: undone before anything else.
    if let Err(e) = non_dumpable() {
        eprintln!("kata-agent init: {e}");
        return Some(ExitCode::from(4));
    }
    let Some(fd) = namespaces::inherited(SOCKET_FD) else {
        eprintln!("kata-agent init: the container setup helper is started by the agent only");
        return Some(ExitCode::from(2));
    };
    let mut sock = UnixStream::from(fd);
    let outcome = match protocol::recv::<HelperConfig>(&mut sock) {
        Ok(Some(config)) => run(&mut sock, &config),
        Ok(None) => return Some(ExitCode::from(3)),
        Err(e) => Err(SetupError::spec(format!(
            "read the helper configuration: {e}"
        ))),
    };
    match outcome {
        Ok(Exit::Released(e)) | Err(e) => report(&mut sock, &e),
        Ok(Exit::Abandoned) => {}
    }
    Some(ExitCode::from(1))
}

/// How the helper ends without having executed the program.
enum Exit {
    /// The program's exec (or a step after `Go`) failed.
    Released(SetupError),
    /// The agent went away before `Go`.
    Abandoned,
}

fn report(sock: &mut UnixStream, e: &SetupError) {
    let failed = Report::Failed {
        message: e.to_string(),
        errno: e.errno(),
    };
    // Nobody to tell if the agent is gone.
    let _ = protocol::send(sock, &failed);
}

fn run(sock: &mut UnixStream, config: &HelperConfig) -> Result<Exit> {
    // SAFETY: umask has no memory effects. Device nodes and mount points get exact modes.
    unsafe { libc::umask(0) };
    exec::apply_limits(&config.process)?;
    let spec = &config.spec;
    let state = HookState {
        oci_version: spec.version().clone(),
        id: config.id.clone(),
        status: "creating".into(),
        pid: agent_pid(),
        bundle: rootfs::root_path(spec)
            .ok()
            .and_then(|p| p.parent().map(|p| p.display().to_string()))
            .unwrap_or_default(),
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    namespaces::enter_init(spec)?;
    namespaces::set_names(spec)?;
    namespaces::apply_sysctls(spec)?;
    rootfs::set_up(spec, config.no_pivot_root, &state)?;
    let late_cgroupns = namespaces::wants_new_cgroupns(spec);
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::compile)
        .transpose()?;
    // The labels apply at the program's execve, set while the helper still has its privileges.
    lsm::set_exec_labels(&config.process)?;
    let ready = exec::resolve(&config.program, &config.process)?;
    if !late_cgroupns {
        exec::apply_credentials(&config.program, &config.process, seccomp.as_ref())?;
        non_dumpable()?;
    }
    protocol::send(sock, &Report::Ready)
        .map_err(|e| SetupError::spec(format!("report ready: {e}")))?;
    match protocol::recv::<Order>(sock) {
        Ok(Some(Order::Go)) => {}
        _ => return Ok(Exit::Abandoned),
    }
    Ok(Exit::Released(after_go(
        config,
        &state,
        ready,
        seccomp,
        late_cgroupns,
    )))
}

/// The steps after `Go`; returns only on failure.
fn after_go(
    config: &HelperConfig,
    state: &HookState,
    ready: Ready,
    seccomp: Option<Compiled>,
    late_cgroupns: bool,
) -> SetupError {
    let steps = || -> Result<()> {
        if late_cgroupns {
            namespaces::unshare_cgroupns()?;
            exec::apply_credentials(&config.program, &config.process, seccomp.as_ref())?;
            non_dumpable()?;
        }
        if let Some(hooks) = config
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.start_container().clone())
        {
            let state = HookState {
                status: "created".into(),
                ..state.clone()
            };
            super::hooks::run("startContainer", &hooks, &state)?;
        }
        Ok(())
    };
    if let Err(e) = steps() {
        return e;
    }
    ready.exec(&config.process, seccomp.as_ref())
}

/// Makes the helper non-dumpable, so that nothing in the container can ptrace it, open its
/// `/proc/<pid>/mem` or `process_vm_readv` it (runc CVE-2016-9962). A credential change or a
/// namespace entry can reset the flag, so it is set again after each; the program's exec
/// decides for the program.
fn non_dumpable() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| SetupError::Step {
        step: "make the setup helper non-dumpable".to_owned(),
        source: e.into(),
    })
}

/// The helper's pid in the agent's pid namespace: `/proc` is still the agent's procfs here, and
/// its `self` link names the reader by its pid in that namespace.
fn agent_pid() -> i32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}
