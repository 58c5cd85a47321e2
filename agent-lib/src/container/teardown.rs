//! What was set up for a container, as a list of steps undone in reverse: the rollback of a
//! failed CreateContainer and the last part of RemoveContainer.

use std::path::Path;
use std::sync::Arc;

use super::ContainerError;
use crate::attach::Attach;
use crate::host::Host;
use crate::process::Process;
use crate::undo::Undo;

/// One thing to undo.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// Give back the container's uses of its storages.
    Storages,
    /// A mount, file or folder made for the container.
    Made(Undo),
    /// Destroy the cgroup.
    Cgroup(String),
    /// Kill a process and wait until it is reaped (rollback only).
    Kill(Arc<Process>),
}

impl Step {
    /// What undoing it does, as errors name it.
    fn describe(&self) -> String {
        match self {
            Step::Storages => "release the storages".into(),
            Step::Made(undo) => undo.to_string(),
            Step::Cgroup(path) => format!("destroy cgroup {path}"),
            Step::Kill(process) => format!("kill pid {}", process.pid()),
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Step::Made(undo) => Some(undo.path()),
            _ => None,
        }
    }

    /// Whether undoing `self` must wait until `other` (done later, so undone earlier) is undone:
    /// a folder is not removed, nor a mount under it unmounted, while something below it is
    /// still there or mounted; storages are not released while a bind of them is still mounted;
    /// a cgroup is not destroyed while a process may still run in it.
    fn waits_for(&self, other: &Step) -> bool {
        match (self, other) {
            (Step::Storages, Step::Made(Undo::Unmount(_))) => true,
            (Step::Cgroup(_), Step::Kill(_)) => true,
            (Step::Made(undo), _) => {
                let mine = undo.path();
                let below = other
                    .path()
                    .is_some_and(|theirs| theirs.starts_with(mine) && theirs != mine);
                let mounted_on =
                    matches!(other, Step::Made(Undo::Unmount(target)) if target == mine);
                below || (mounted_on && !matches!(undo, Undo::Unmount(_)))
            }
            _ => false,
        }
    }
}

/// Steps in the order they were done.
#[derive(Debug, Default)]
pub(crate) struct Teardown {
    steps: Vec<Step>,
    /// [`Teardown::run`] ran at least once: the container's processes were all stopped.
    started: bool,
}

impl Teardown {
    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Drops the [`Step::Kill`]s: the processes now belong to the created container.
    pub(crate) fn keep_processes(&mut self) {
        self.steps.retain(|s| !matches!(s, Step::Kill(_)));
    }

    /// Undoes everything, best effort: a failed step is logged and the rest still run.
    pub(crate) async fn rollback(mut self, host: &Host, attach: &Attach, cid: &str) {
        while let Some(step) = self.steps.pop() {
            if let Err(e) = undo(host, attach, cid, &step).await {
                tracing::warn!(container = cid, error = %e, "rollback step failed");
            }
        }
    }

    /// Whether [`Teardown::run`] ran before (a retried RemoveContainer).
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// Undoes everything in reverse. Every step is attempted except those that must wait for
    /// one that failed (see [`Step::waits_for`]); the failed and the waiting steps stay, in
    /// order, so a later call finishes the teardown. The error names every failed step and
    /// every step left waiting.
    pub(crate) async fn run(
        &mut self,
        host: &Host,
        attach: &Attach,
        cid: &str,
    ) -> Result<(), ContainerError> {
        self.started = true;
        // In undo order: the steps that failed or waited.
        let mut left: Vec<Step> = Vec::new();
        let mut failed = Vec::new();
        let mut waiting = Vec::new();
        while let Some(step) = self.steps.pop() {
            if let Some(blocker) = left.iter().find(|l| step.waits_for(l)) {
                tracing::debug!(container = cid, step = %step.describe(),
                    after = %blocker.describe(), "teardown step left for a retry");
                waiting.push(step.describe());
                left.push(step);
                continue;
            }
            if let Err(e) = undo(host, attach, cid, &step).await {
                tracing::warn!(container = cid, error = %e, "teardown step failed");
                failed.push(e);
                left.push(step);
            }
        }
        left.reverse();
        self.steps = left;
        if failed.len() == 1 && waiting.is_empty() {
            return Err(failed.remove(0));
        }
        if failed.is_empty() {
            return Ok(());
        }
        Err(ContainerError::Teardown {
            container: cid.to_owned(),
            failed,
            waiting,
        })
    }
}

async fn undo(host: &Host, attach: &Attach, cid: &str, step: &Step) -> Result<(), ContainerError> {
    match step {
        Step::Storages => {
            attach
                .release_container_storages(cid)
                .map_err(|source| ContainerError::Attach {
                    container: cid.to_owned(),
                    source,
                })
        }
        Step::Made(undo) => undo
            .apply(host)
            .map_err(ContainerError::step(cid, step.describe())),
        Step::Cgroup(path) => host
            .cgroups
            .destroy(path)
            .map_err(ContainerError::step(cid, step.describe())),
        Step::Kill(process) => {
            if process.exit_status().is_none()
                && let Err(e) = host.launcher.signal(process.pid(), libc::SIGKILL)
                && e.raw_os_error() != Some(libc::ESRCH)
            {
                return Err(ContainerError::step(cid, step.describe())(e));
            }
            process.wait().await;
            Ok(())
        }
    }
}
