//! [`Journal`]: what a storage did to the OS, recorded step by step so a failure halfway and the
//! release of the last user undo exactly that, in reverse order.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::error::StorageError;
use crate::host::Host;
use crate::undo::{Undo, unwind};

/// Lets a background task and the undo of its storage take turns: the task works only while
/// holding the gate open, the undo closes it.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<Mutex<bool>>);

impl Gate {
    /// An open gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` unless the gate is closed; returns whether it ran.
    pub fn run(&self, work: impl FnOnce()) -> bool {
        let closed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if *closed {
            return false;
        }
        work();
        true
    }

    /// Closes the gate, waiting for work in progress.
    pub fn close(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }
}

/// One thing done, and how to undo it.
enum Step {
    /// A mount, directory, file or tree this storage made.
    Made(Undo),
    /// A background task of this storage, and the gate it holds while working.
    StopTask(JoinHandle<()>, Gate),
    /// A file overwritten (a sysfs attribute): put the old contents back, on rollback only.
    Restore { path: PathBuf, old: Vec<u8> },
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Made(undo) => write!(f, "{undo}"),
            Step::StopTask(..) => write!(f, "stop task"),
            Step::Restore { path, .. } => write!(f, "restore {}", path.display()),
        }
    }
}

/// The steps a storage took, undone last-first.
#[derive(Debug, Default)]
pub struct Journal {
    steps: Vec<Step>,
}

impl Journal {
    /// Nothing done yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Records a mount on `target`.
    pub fn mounted(&mut self, target: impl Into<PathBuf>) {
        self.steps.push(Step::Made(Undo::Unmount(target.into())));
    }

    /// Records a directory created (removed while empty: others may add to it).
    pub fn created_dir(&mut self, path: impl Into<PathBuf>) {
        self.steps
            .push(Step::Made(Undo::RemoveIfEmpty(path.into())));
    }

    /// Records a file created.
    pub fn created_file(&mut self, path: impl Into<PathBuf>) {
        self.steps.push(Step::Made(Undo::Remove(path.into())));
    }

    /// Records a tree of files made under `path` (the directory itself included).
    pub fn created_tree(&mut self, path: impl Into<PathBuf>) {
        self.steps.push(Step::Made(Undo::RemoveTree(path.into())));
    }

    /// Records a background task to stop. The task holds `gate` while it works and ends when
    /// it finds it closed; the undo closes it (waiting for work in progress) and aborts the task.
    pub fn spawned(&mut self, task: JoinHandle<()>, gate: Gate) {
        self.steps.push(Step::StopTask(task, gate));
    }

    /// Records that `path` held `old` before being overwritten; restored on rollback only (a
    /// released storage leaves the setting as it is, as Kata does for huge pages).
    pub fn overwrote(&mut self, path: impl Into<PathBuf>, old: Vec<u8>) {
        self.steps.push(Step::Restore {
            path: path.into(),
            old,
        });
    }

    /// Undoes everything after a failure halfway. Errors are logged: the first failure is what
    /// the caller reports.
    pub fn rollback(self, host: &Host) {
        if let Err(e) = self.run(host, true) {
            tracing::error!(error = %e, "storage rollback incomplete");
        }
    }

    /// Undoes everything for the release of the last user; every step is tried, the first
    /// error is returned.
    pub fn release(self, host: &Host) -> Result<(), StorageError> {
        self.run(host, false)
    }

    fn run(self, host: &Host, rollback: bool) -> Result<(), StorageError> {
        let failed = unwind(self.steps, |step| {
            tracing::debug!(?step, rollback, "undo");
            undo_step(host, step, rollback).inspect_err(|e| {
                tracing::warn!(error = %e, "undo step failed");
            })
        });
        failed.into_iter().next().map_or(Ok(()), |(_, e)| Err(e))
    }
}

fn undo_step(host: &Host, step: &Step, rollback: bool) -> Result<(), StorageError> {
    match step {
        Step::Made(undo) => undo.apply(host).map_err(|e| {
            let what = match undo {
                Undo::Unmount(_) => "umount",
                Undo::RemoveIfEmpty(_) => "remove mount point",
                Undo::Remove(_) => "remove file",
                Undo::RemoveTree(_) => "remove tree",
            };
            StorageError::os(what, undo.path(), e)
        }),
        Step::StopTask(task, gate) => {
            gate.close();
            task.abort();
            Ok(())
        }
        Step::Restore { path, old } if rollback => host
            .sysfs
            .write(path, old)
            .map_err(|e| StorageError::os("restore", path, e)),
        Step::Restore { .. } => Ok(()),
    }
}
