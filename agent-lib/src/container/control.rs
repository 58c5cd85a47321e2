//! StartContainer, PauseContainer, ResumeContainer and UpdateContainer.

use oci_spec::runtime::LinuxResources;

use super::hooks::run_hooks_logged;
use super::{ContainerError, Containers, Status};

impl Containers {
    /// Lets the init of a created container run its program, after setting up the OOM watch
    /// that feeds GetOOMEvent (not for the sandbox's own infra container, as Kata).
    pub async fn start(&self, cid: &str) -> Result<(), ContainerError> {
        let container = self.get(cid)?;
        if container.status() != Status::Created {
            return Err(container.wrong_state("start"));
        }
        if cid != self.sandbox.id() {
            match self.host.cgroups.watch_oom(&container.cgroup) {
                Ok(events) => self.oom.forward(cid.to_owned(), events),
                // No memory controller on this cgroup: the kernel reports no OOM kill there.
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    tracing::warn!(container = cid, error = %e, "no OOM events for this container");
                }
                Err(e) => {
                    return Err(ContainerError::step(cid, "watch the cgroup for OOM kills")(
                        e,
                    ));
                }
            }
        }
        self.host
            .launcher
            .release(container.init.pid())
            .await
            .map_err(ContainerError::step(cid, "release the init process"))?;
        container.lock().status = Status::Running;
        tracing::info!(container = cid, "container started");
        if let Some(hooks) = container.setup.spec.hooks()
            && let Some(poststart) = hooks.poststart()
        {
            let state =
                super::create::hook_state(&container.setup, "running", container.init.pid());
            run_hooks_logged(&*self.host.launcher, "poststart", poststart, &state).await;
        }
        Ok(())
    }

    /// Freezes every process of a created or running container.
    pub async fn pause(&self, cid: &str) -> Result<(), ContainerError> {
        let container = self.get(cid)?;
        if !matches!(container.status(), Status::Created | Status::Running) {
            return Err(container.wrong_state("pause"));
        }
        self.host
            .cgroups
            .freeze(&container.cgroup, true)
            .map_err(ContainerError::step(cid, "freeze the cgroup"))?;
        container.lock().status = Status::Paused;
        Ok(())
    }

    /// Thaws a paused container.
    pub async fn resume(&self, cid: &str) -> Result<(), ContainerError> {
        let container = self.get(cid)?;
        if container.status() != Status::Paused {
            return Err(container.wrong_state("resume"));
        }
        self.host
            .cgroups
            .freeze(&container.cgroup, false)
            .map_err(ContainerError::step(cid, "thaw the cgroup"))?;
        container.lock().status = Status::Running;
        Ok(())
    }

    /// Applies new resource limits to a container's cgroup.
    pub async fn update(
        &self,
        cid: &str,
        resources: &LinuxResources,
    ) -> Result<(), ContainerError> {
        let container = self.get(cid)?;
        self.host
            .cgroups
            .set(&container.cgroup, resources)
            .map_err(ContainerError::step(cid, "update the cgroup limits"))
    }
}
