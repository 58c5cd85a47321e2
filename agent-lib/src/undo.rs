//! The one undo primitive: a change the agent made to the guest's mounts and files, and how
//! to take it back.
//!
//! The sandbox, container and storage journals record [`Undo`]s next to the steps only they
//! know (releasing storages, destroying a cgroup, stopping a task); [`unwind`] takes a journal
//! back last-first. A container's ordering between steps and its retries are a layer on top
//! (`container/teardown.rs`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MntFlags;

use crate::host::{Host, NodeKind};

/// One change to undo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Undo {
    /// A mount on this target: detached (lazily, so a busy mount goes too); a target no
    /// longer mounted is done.
    Unmount(PathBuf),
    /// A file or empty directory made: removed; one already gone is done.
    Remove(PathBuf),
    /// A directory made where others may since have put files: removed while empty, left
    /// (as theirs) otherwise.
    RemoveIfEmpty(PathBuf),
    /// A tree of files made: removed with everything in it, without following links.
    RemoveTree(PathBuf),
}

impl Undo {
    /// The path the change was made at.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Undo::Unmount(p) | Undo::Remove(p) | Undo::RemoveIfEmpty(p) | Undo::RemoveTree(p) => p,
        }
    }

    /// Takes the change back.
    pub(crate) fn apply(&self, host: &Host) -> io::Result<()> {
        match self {
            Undo::Unmount(target) => {
                let detached = host.mounter.umount(target, MntFlags::MNT_DETACH);
                done_if(detached, &[Errno::EINVAL])
            }
            Undo::Remove(path) => done_if(host.agent_files.remove_file(path), &[Errno::ENOENT]),
            Undo::RemoveIfEmpty(path) => done_if(
                host.agent_files.remove_file(path),
                &[Errno::ENOENT, Errno::ENOTEMPTY, Errno::EEXIST],
            ),
            Undo::RemoveTree(path) => remove_tree(host, path),
        }
    }
}

/// As errors and logs name it: `unmount /path`, `remove /path`.
impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undo::Unmount(p) => write!(f, "unmount {}", p.display()),
            Undo::Remove(p) | Undo::RemoveIfEmpty(p) => write!(f, "remove {}", p.display()),
            Undo::RemoveTree(p) => write!(f, "remove the tree {}", p.display()),
        }
    }
}

/// Takes back `journal` (steps in the order they were done) last-first with `undo`, trying
/// every step; returns the steps that failed with their errors, in undo order.
pub(crate) fn unwind<S, E>(
    journal: Vec<S>,
    mut undo: impl FnMut(&S) -> Result<(), E>,
) -> Vec<(S, E)> {
    let mut failed = Vec::new();
    for step in journal.into_iter().rev() {
        if let Err(e) = undo(&step) {
            failed.push((step, e));
        }
    }
    failed
}

/// Removes `path` and everything under it, without following links; a missing path is fine.
pub(crate) fn remove_tree(host: &Host, path: &Path) -> io::Result<()> {
    let meta = match host.sysfs.symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if is_errno(&e, &[Errno::ENOENT]) => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.kind == NodeKind::Dir {
        for name in host.sysfs.read_dir(path)? {
            remove_tree(host, &path.join(name))?;
        }
    }
    done_if(host.agent_files.remove_file(path), &[Errno::ENOENT])
}

/// `result`, with the errors in `done` counted as success.
fn done_if(result: io::Result<()>, done: &[Errno]) -> io::Result<()> {
    match result {
        Err(e) if is_errno(&e, done) => Ok(()),
        other => other,
    }
}

/// Whether `e` is one of `errnos`.
pub(crate) fn is_errno(e: &io::Error, errnos: &[Errno]) -> bool {
    e.raw_os_error()
        .is_some_and(|raw| errnos.iter().any(|n| *n as i32 == raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwind_runs_last_first_tries_every_step_and_returns_failures_in_undo_order() {
        let mut ran = Vec::new();
        let failed = unwind(vec![1, 2, 3, 4], |step| {
            ran.push(*step);
            if step % 2 == 0 {
                Err(step * 10)
            } else {
                Ok(())
            }
        });
        assert_eq!(ran, [4, 3, 2, 1]);
        assert_eq!(failed, [(4, 40), (2, 20)]);
    }

    #[test]
    fn names_say_what_undoing_does() {
        assert_eq!(Undo::Unmount("/a".into()).to_string(), "unmount /a");
        assert_eq!(Undo::RemoveIfEmpty("/b".into()).to_string(), "remove /b");
        assert_eq!(Undo::RemoveTree("/c".into()).path(), Path::new("/c"));
    }
}
