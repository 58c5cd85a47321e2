//! RemoveContainer and the removal of every container at DestroySandbox.

use std::sync::Arc;
use std::time::Duration;

use super::hooks::run_hooks_logged;
use super::{Container, ContainerError, Containers, Slot};

/// How long to wait between two looks at a cgroup that still has members after every known
/// process exited (a descendant the agent did not start).
const STRAGGLER_POLL: Duration = Duration::from_millis(10);

impl Containers {
    /// Kills every process of the container, waits for them (at most `timeout`; `None` waits
    /// forever), destroys its cgroup, removes its bundle and releases its storages and devices.
    ///
    /// On timeout the container stays, marked stopping, and the error says ETIME; a later
    /// RemoveContainer carries on. A kill that cannot be sent fails the call at once (nothing
    /// is torn down; a retry kills again). Teardown attempts every step it can; the failed ones
    /// (and those that must follow them) leave the container for a retry, which does just
    /// those.
    pub async fn remove(
        self: &Arc<Self>,
        cid: &str,
        timeout: Option<Duration>,
    ) -> Result<(), ContainerError> {
        let container = self.get(cid)?;
        {
            let mut state = container.lock();
            if state.removing {
                return Err(ContainerError::WrongState {
                    container: cid.to_owned(),
                    state: "being removed",
                    operation: "remove",
                });
            }
            state.removing = true;
        }
        let this = self.clone();
        let task_container = container.clone();
        let task = tokio::spawn(async move { this.remove_steps(&task_container, timeout).await });
        let result = match task.await {
            Ok(result) => result,
            Err(e) => Err(ContainerError::Step {
                container: cid.to_owned(),
                step: "the removal task".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        };
        if let Err(e) = result {
            container.lock().removing = false;
            tracing::error!(container = cid, error = %e, "RemoveContainer failed");
            return Err(e);
        }
        {
            let mut slots = self.slots();
            if matches!(slots.get(cid), Some(Slot::Ready(c)) if Arc::ptr_eq(c, &container)) {
                slots.remove(cid);
            }
        }
        tracing::info!(container = cid, "container removed");
        // OCI: poststop hooks run once the container is deleted, before the delete returns.
        if let Some(poststop) = container
            .setup
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
        {
            let state =
                super::create::hook_state(&container.setup, "stopped", container.init.pid());
            run_hooks_logged(&*self.host.launcher, "poststop", &poststop, &state).await;
        }
        Ok(())
    }

    async fn remove_steps(
        &self,
        container: &Container,
        timeout: Option<Duration>,
    ) -> Result<(), ContainerError> {
        let cid = container.id();
        // A retry after a failed teardown: every process was stopped already.
        let stopped = container.lock().teardown.started();
        if !stopped {
            let stop = self.stop(container);
            match timeout {
                None => stop.await?,
                Some(limit) => tokio::time::timeout(limit, stop).await.map_err(|_| {
                    ContainerError::Timeout {
                        container: cid.to_owned(),
                        secs: limit.as_secs(),
                    }
                })??,
            }
        }
        let mut teardown = std::mem::take(&mut container.lock().teardown);
        let result = teardown.run(&self.host, &self.attach, cid).await;
        container.lock().teardown = teardown;
        // Its processes are gone: the sandbox pid namespace pinned from its init (if it was
        // the first container) is released too, whatever the teardown's outcome.
        let released = self.sandbox.release_pid_namespace(cid).map_err(|e| {
            ContainerError::step(cid, "release the sandbox pid namespace")(std::io::Error::other(
                e.to_string(),
            ))
        });
        result.and(released)
    }

    /// Kills and waits until no process of the container is left; fails at once when a kill
    /// cannot be sent (waiting for that process would never end).
    async fn stop(&self, container: &Container) -> Result<(), ContainerError> {
        loop {
            self.kill_all(container)?;
            let processes: Vec<_> = {
                let state = container.lock();
                state.processes.values().cloned().collect()
            };
            container.init.wait().await;
            for process in processes {
                process.wait().await;
            }
            match self.host.cgroups.pids(&container.cgroup) {
                Ok(pids) if !pids.is_empty() => {
                    tracing::debug!(container = container.id(), ?pids, "waiting for stragglers");
                    tokio::time::sleep(STRAGGLER_POLL).await;
                }
                // Empty, or unreadable: the cgroup destroy will tell.
                _ => return Ok(()),
            }
        }
    }

    /// Removes every container (DestroySandbox), waiting as long as it takes; every container
    /// is tried and the first failure is returned.
    pub async fn remove_all(self: &Arc<Self>) -> Result<(), ContainerError> {
        let mut result = Ok(());
        for cid in self.ids() {
            if let Err(e) = self.remove(&cid, None).await {
                result = result.and(Err(e));
            }
        }
        result
    }
}
