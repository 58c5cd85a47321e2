//! What was set up for a container, as a list of steps undone in reverse: the rollback of a
//! failed CreateContainer and the last part of RemoveContainer.

use std::path::PathBuf;
use std::sync::Arc;

use nix::mount::MntFlags;

use super::ContainerError;
use crate::attach::Attach;
use crate::host::Host;
use crate::process::Process;

/// One thing to undo.
#[derive(Debug)]
pub(crate) enum Step {
    /// Give back the container's uses of its storages.
    Storages,
    /// Remove a file or an empty folder.
    Remove(PathBuf),
    /// Unmount a target (lazily).
    Umount(PathBuf),
    /// Destroy the cgroup.
    Cgroup(String),
    /// Kill a process and wait until it is reaped (rollback only).
    Kill(Arc<Process>),
}

/// Steps in the order they were done.
#[derive(Debug, Default)]
pub(crate) struct Teardown {
    steps: Vec<Step>,
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
            if let Err(e) = undo(host, attach, cid, step).await {
                tracing::warn!(container = cid, error = %e, "rollback step failed");
            }
        }
    }

    /// Undoes everything in reverse, stopping at the first failure; the steps not done stay
    /// for a retry.
    pub(crate) async fn run(
        &mut self,
        host: &Host,
        attach: &Attach,
        cid: &str,
    ) -> Result<(), ContainerError> {
        while let Some(step) = self.steps.pop() {
            let retry = match &step {
                Step::Remove(p) => Step::Remove(p.clone()),
                Step::Umount(p) => Step::Umount(p.clone()),
                Step::Cgroup(c) => Step::Cgroup(c.clone()),
                Step::Kill(p) => Step::Kill(p.clone()),
                Step::Storages => Step::Storages,
            };
            if let Err(e) = undo(host, attach, cid, step).await {
                self.steps.push(retry);
                return Err(e);
            }
        }
        Ok(())
    }
}

async fn undo(host: &Host, attach: &Attach, cid: &str, step: Step) -> Result<(), ContainerError> {
    match step {
        Step::Storages => {
            attach
                .release_container_storages(cid)
                .map_err(|source| ContainerError::Attach {
                    container: cid.to_owned(),
                    source,
                })
        }
        Step::Remove(path) => host.sysfs.remove_file(&path).map_err(ContainerError::step(
            cid,
            format!("remove {}", path.display()),
        )),
        Step::Umount(target) => {
            host.mounter
                .umount(&target, MntFlags::MNT_DETACH)
                .map_err(ContainerError::step(
                    cid,
                    format!("unmount {}", target.display()),
                ))
        }
        Step::Cgroup(path) => host
            .cgroups
            .destroy(&path)
            .map_err(ContainerError::step(cid, format!("destroy cgroup {path}"))),
        Step::Kill(process) => {
            if process.exit_status().is_none()
                && let Err(e) = host.launcher.signal(process.pid(), libc::SIGKILL)
                && e.raw_os_error() != Some(libc::ESRCH)
            {
                return Err(ContainerError::step(
                    cid,
                    format!("kill pid {}", process.pid()),
                )(e));
            }
            process.wait().await;
            Ok(())
        }
    }
}
