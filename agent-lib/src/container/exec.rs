//! ExecProcess, SignalProcess and WaitProcess.

use std::sync::Arc;

use oci_spec::runtime::Process as OciProcess;

use super::labels::check_process;
use super::user::StringUser;
use super::user_db::apply_string_user;
use super::{Container, ContainerError, Containers, Status, validate_exec_id};
use crate::device::rewrite_pci_env;
use crate::host::{LaunchRequest, LaunchTarget};
use crate::process::{Process, StdioPorts, launch_spec};

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
    /// A user given by name, resolved in the container's rootfs.
    pub string_user: Option<StringUser>,
    /// The host's passfd streams for its stdio.
    pub ports: StdioPorts,
}

impl Containers {
    /// Starts a process in a running container: launched held, put into the container's cgroup,
    /// then released, so it never runs outside the cgroup (or, with a launcher that starts it
    /// there, launched at once). On failure it is killed and reaped.
    pub async fn exec(&self, request: ExecRequest) -> Result<(), ContainerError> {
        let ExecRequest {
            container_id: cid,
            exec_id,
            mut process,
            string_user,
            ports,
        } = request;
        // First, as Kata: the streams are closed whatever fails later.
        let passfd = self.passfd_io(ports).await?;
        validate_exec_id(&exec_id)?;
        let container = self.get(&cid)?;
        if let Some(env) = process.env_mut() {
            rewrite_pci_env(env, &container.pci_map);
        }
        if let Some(user) = string_user.as_ref().filter(|u| !u.is_empty()) {
            apply_string_user(
                &*self.host.files,
                &container.root_source,
                user,
                &mut process,
            )?;
        }
        let (process_spec, stdio) = launch_spec(&process)?;
        check_process(&process, &*self.host.sysfs)?;
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
            .await
            .inspect(|started| {
                if let Some(io) = passfd {
                    started.splice(io);
                }
            });
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
        // In a frozen cgroup the new process would never reach its exec, and the release
        // below would wait for it forever (runc refuses too).
        let paused = container.status() == Status::Paused;
        if paused || container.init.exit_status().is_some() || container.lock().removing {
            return Err(container.wrong_state("exec a process"));
        }
        // A launcher that starts the process in the cgroup needs no hold and no second move.
        let placed = self.host.launcher.places_execs_in_cgroup();
        let request = LaunchRequest {
            process: process_spec,
            stdio,
            pipe_size: self.pipe_size,
            target: LaunchTarget::ContainerExec {
                setup: container.setup.clone(),
                init_pid: container.init.pid(),
                process: Box::new(process),
            },
            hold: !placed,
        };
        let launched = self
            .host
            .launcher
            .launch(&request)
            .await
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
        if placed {
            return Ok(started);
        }
        let placed = match self.host.cgroups.add_process(&container.cgroup, pid) {
            Ok(()) => self
                .host
                .launcher
                .release(pid)
                .await
                .map_err(ContainerError::step(
                    cid,
                    format!("release process {exec_id}"),
                )),
            Err(e) => Err(ContainerError::step(
                cid,
                format!("add pid {pid} to the cgroup"),
            )(e)),
        };
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
            return self.kill_all(&container);
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
    ///
    /// Every process is tried. A kill that cannot be sent (other than to a process already
    /// gone) or a failed thaw (the kills would not land on frozen processes) is an error naming
    /// the step: waiting for those processes would never end. A failed freeze or member list
    /// is only logged: the kills still go out, and removal looks for stragglers.
    pub(crate) fn kill_all(&self, container: &Container) -> Result<(), ContainerError> {
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
        let mut failed: Vec<(i32, std::io::Error)> = Vec::new();
        for pid in pids {
            if let Err(e) = self.host.launcher.signal(pid, libc::SIGKILL)
                && e.raw_os_error() != Some(libc::ESRCH)
            {
                tracing::warn!(container = cid, pid, error = %e, "SIGKILL failed");
                failed.push((pid, e));
            }
        }
        let thawed = cgroups
            .freeze(&container.cgroup, false)
            .map_err(ContainerError::step(cid, "thaw the cgroup after the kills"));
        let others = match failed.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} other process(es))", n - 1),
        };
        if let Some((pid, e)) = failed.into_iter().next() {
            return Err(ContainerError::step(
                cid,
                format!("send SIGKILL to pid {pid}{others}"),
            )(e));
        }
        thawed
    }

    /// Waits for a process to exit and returns its exit code (128 + signal when signalled).
    /// The process is then forgotten: a second wait is `NotFound`. Waiters already waiting all
    /// get the code.
    pub async fn wait(&self, cid: &str, exec_id: &str) -> Result<i32, ContainerError> {
        let container = self.get(cid)?;
        let process = self.process(cid, exec_id)?;
        let status = process.wait().await;
        process.outputs_flushed().await;
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
