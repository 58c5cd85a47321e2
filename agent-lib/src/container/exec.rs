//! ExecProcess, SignalProcess and WaitProcess.

use std::sync::Arc;

use oci_spec::runtime::Process as OciProcess;

use super::{Container, ContainerError, Containers, validate_exec_id};
use crate::device::rewrite_pci_env;
use crate::host::{LaunchRequest, LaunchTarget};
use crate::process::{Process, launch_spec};

/// The largest signal number (`SIGRTMAX`).
const SIGRTMAX: u32 = 64;

/// ExecProcess, as the agent understands it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecRequest {
    /// The container.
    pub container_id: String,
    /// The new process's exec id.
    pub exec_id: String,
    /// What to run.
    pub process: OciProcess,
}

impl Containers {
    /// Starts a process in a running container: launched held, put into the container's cgroup,
    /// then released, so it never runs outside the cgroup. On failure it is killed and reaped.
    pub async fn exec(&self, request: ExecRequest) -> Result<(), ContainerError> {
        let ExecRequest {
            container_id: cid,
            exec_id,
            mut process,
        } = request;
        validate_exec_id(&exec_id)?;
        let container = self.get(&cid)?;
        if let Some(env) = process.env_mut() {
            rewrite_pci_env(env, &container.pci_map);
        }
        let (process_spec, stdio) = launch_spec(&process)?;
        {
            let mut state = container.lock();
            if state.processes.contains_key(&exec_id) || !state.starting.insert(exec_id.clone()) {
                return Err(ContainerError::ProcessExists {
                    container: cid,
                    exec_id,
                });
            }
        }
        let result = self
            .exec_steps(&container, &exec_id, process, process_spec, stdio)
            .await;
        let mut state = container.lock();
        state.starting.remove(&exec_id);
        let process = result?;
        state.processes.insert(exec_id.clone(), process);
        tracing::info!(container = %cid, exec_id = %exec_id, "process started");
        Ok(())
    }

    async fn exec_steps(
        &self,
        container: &Container,
        exec_id: &str,
        process: OciProcess,
        process_spec: crate::host::ProcessSpec,
        stdio: crate::host::StdioMode,
    ) -> Result<Arc<Process>, ContainerError> {
        let cid = container.id();
        if container.init.exit_status().is_some() || container.lock().removing {
            return Err(container.wrong_state("exec a process"));
        }
        let request = LaunchRequest {
            process: process_spec,
            stdio,
            pipe_size: self.pipe_size,
            target: LaunchTarget::ContainerExec {
                setup: container.setup.clone(),
                init_pid: container.init.pid(),
                process: Box::new(process),
            },
            hold: true,
        };
        let launched = self
            .host
            .launcher
            .launch(&request)
            .map_err(ContainerError::step(
                cid,
                format!("start process {exec_id}"),
            ))?;
        let pid = launched.pid;
        let started = match Process::new(exec_id, false, launched) {
            Ok(started) => started,
            Err(e) => {
                let _ = self.host.launcher.signal(pid, libc::SIGKILL);
                return Err(e.into());
            }
        };
        let placed = self
            .host
            .cgroups
            .add_process(&container.cgroup, pid)
            .map_err(ContainerError::step(
                cid,
                format!("add pid {pid} to the cgroup"),
            ))
            .and_then(|()| {
                self.host
                    .launcher
                    .release(pid)
                    .map_err(ContainerError::step(
                        cid,
                        format!("release process {exec_id}"),
                    ))
            });
        if let Err(e) = placed {
            let _ = self.host.launcher.signal(pid, libc::SIGKILL);
            started.wait().await;
            return Err(e);
        }
        Ok(started)
    }

    /// Sends `signal` to a process. `exec_id` "" with SIGKILL means every process in the
    /// container's cgroup; a SIGTERM to an init that does not handle it becomes SIGKILL (it
    /// would be ignored otherwise). A process already gone is not an error.
    pub async fn signal(
        &self,
        cid: &str,
        exec_id: &str,
        signal: u32,
    ) -> Result<(), ContainerError> {
        if signal > SIGRTMAX {
            return Err(ContainerError::InvalidSignal(signal));
        }
        // In range, so it fits.
        let mut signal = signal as i32;
        if exec_id.is_empty() && signal == libc::SIGKILL {
            let container = self.get(cid)?;
            self.kill_all(&container);
            return Ok(());
        }
        let process = self.process(cid, exec_id)?;
        if process.exit_status().is_some() {
            return Ok(());
        }
        let launcher = &self.host.launcher;
        if process.is_init()
            && signal == libc::SIGTERM
            && !launcher
                .handles_signal(process.pid(), signal)
                .unwrap_or(false)
        {
            signal = libc::SIGKILL;
        }
        tracing::info!(
            container = cid,
            exec_id,
            pid = process.pid(),
            signal,
            "signalling"
        );
        match launcher.signal(process.pid(), signal) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other.map_err(ContainerError::step(
                cid,
                format!("send signal {signal} to pid {}", process.pid()),
            )),
        }
    }

    /// SIGKILLs every process of `container`: the cgroup is frozen so none can fork away, each
    /// member and each known process is killed, then the cgroup is thawed so the kills land.
    /// Failures are logged: this is the last resort of removal.
    pub(crate) fn kill_all(&self, container: &Container) {
        let cid = container.id();
        let cgroups = &self.host.cgroups;
        if let Err(e) = cgroups.freeze(&container.cgroup, true) {
            tracing::warn!(container = cid, error = %e, "freezing the cgroup failed");
        }
        let mut pids = cgroups.pids(&container.cgroup).unwrap_or_else(|e| {
            tracing::warn!(container = cid, error = %e, "listing the cgroup failed");
            Vec::new()
        });
        for process in container.lock().processes.values() {
            if process.exit_status().is_none() && !pids.contains(&process.pid()) {
                pids.push(process.pid());
            }
        }
        if container.init.exit_status().is_none() && !pids.contains(&container.init.pid()) {
            pids.push(container.init.pid());
        }
        for pid in pids {
            if let Err(e) = self.host.launcher.signal(pid, libc::SIGKILL)
                && e.raw_os_error() != Some(libc::ESRCH)
            {
                tracing::warn!(container = cid, pid, error = %e, "SIGKILL failed");
            }
        }
        if let Err(e) = cgroups.freeze(&container.cgroup, false) {
            tracing::warn!(container = cid, error = %e, "thawing the cgroup failed");
        }
    }

    /// Waits for a process to exit and returns its exit code (128 + signal when signalled).
    /// The process is then forgotten: a second wait is `NotFound`. Waiters already waiting all
    /// get the code.
    pub async fn wait(&self, cid: &str, exec_id: &str) -> Result<i32, ContainerError> {
        let container = self.get(cid)?;
        let process = self.process(cid, exec_id)?;
        let status = process.wait().await;
        let mut state = container.lock();
        if state
            .processes
            .get(process.exec_id())
            .is_some_and(|p| Arc::ptr_eq(p, &process))
        {
            state.processes.remove(process.exec_id());
        }
        Ok(status.code())
    }
}
