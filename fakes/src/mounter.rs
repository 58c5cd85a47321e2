//! `FakeMounter`: a mount table in memory with mount(2)/umount2(2) semantics.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kata_agent::host::{MountEntry, MountSpec, Mounter, ShareMount};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::faults::{Faults, Op, errno, lock};

/// Flags that only change propagation (`mount --make-*`).
const PROPAGATION: MsFlags = MsFlags::MS_SHARED
    .union(MsFlags::MS_PRIVATE)
    .union(MsFlags::MS_SLAVE)
    .union(MsFlags::MS_UNBINDABLE);

/// Per-mount flags a remount may change, as shown in the options column.
const SHOWN: [(MsFlags, &str); 8] = [
    (MsFlags::MS_NOSUID, "nosuid"),
    (MsFlags::MS_NODEV, "nodev"),
    (MsFlags::MS_NOEXEC, "noexec"),
    (MsFlags::MS_SYNCHRONOUS, "sync"),
    (MsFlags::MS_DIRSYNC, "dirsync"),
    (MsFlags::MS_NOATIME, "noatime"),
    (MsFlags::MS_NODIRATIME, "nodiratime"),
    (MsFlags::MS_RELATIME, "relatime"),
];

/// One mount in the fake table, with what the kernel would keep about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeMount {
    /// Unique, increasing id (like mountinfo's mount ID); never reused.
    pub id: u64,
    /// Source as given (the source path for bind mounts).
    pub source: String,
    /// Mount point.
    pub target: PathBuf,
    /// Filesystem type; `none` for bind mounts.
    pub fstype: String,
    /// Current `MS_*` flags (`MS_RDONLY`, `MS_BIND`, `MS_NOSUID`..., propagation).
    pub flags: MsFlags,
    /// Filesystem options.
    pub data: Option<String>,
}

impl FakeMount {
    /// Whether the mount is read-only.
    pub fn is_readonly(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }

    /// The mount-table line for this mount.
    pub fn entry(&self) -> MountEntry {
        let mut options = vec![if self.is_readonly() { "ro" } else { "rw" }.to_owned()];
        options.extend(
            SHOWN
                .iter()
                .filter(|(flag, _)| self.flags.contains(*flag))
                .map(|(_, name)| (*name).to_owned()),
        );
        options.extend(self.data.iter().filter(|d| !d.is_empty()).cloned());
        MountEntry {
            source: self.source.clone(),
            target: self.target.clone(),
            fstype: self.fstype.clone(),
            options: options.join(","),
        }
    }
}

/// A mount cloned from one container's mount namespace into another's
/// ([`Mounter::share_mount`]): it lives in the destination namespace, not in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeSharedMount {
    /// Unique, increasing id, from the same counter as [`FakeMount::id`].
    pub id: u64,
    /// What was asked.
    pub share: ShareMount,
}

#[derive(Debug, Default)]
struct Table {
    mounts: Vec<FakeMount>,
    /// Mounts in containers' namespaces, until the destination's namespace goes.
    shared: Vec<FakeSharedMount>,
    next_id: u64,
}

impl Table {
    /// Index of the top (last) mount on `target`.
    fn top(&self, target: &Path) -> Option<usize> {
        self.mounts.iter().rposition(|m| m.target == target)
    }

    /// Indexes of mounts stacked above `idx` and beneath its mount point (its submounts).
    fn children(&self, idx: usize) -> Vec<usize> {
        let target = &self.mounts[idx].target;
        (idx + 1..self.mounts.len())
            .filter(|&j| {
                self.mounts[j].target != *target && self.mounts[j].target.starts_with(target)
            })
            .collect()
    }
}

/// A mount table in memory.
///
/// Semantics, kept close to the kernel's:
/// - a plain mount needs a source and a filesystem type (`EINVAL` otherwise); a bind mount
///   (`MS_BIND`) needs a source and records it as the mount source with type `none`;
/// - mounts may stack on one target; [`Mounter::umount`] removes the top one;
/// - `MS_REMOUNT` changes the flags (and, without `MS_BIND`, the options) of the top mount on
///   the target and fails with `EINVAL` when nothing is mounted there;
/// - propagation changes (`MS_SHARED`, `MS_PRIVATE`, `MS_SLAVE`, `MS_UNBINDABLE`) need a mount
///   on the target (`/` always counts as one) and add no mount;
/// - `MS_MOVE` moves the top mount on `source` (and its submounts) to the target;
/// - umount of a target with nothing mounted is `EINVAL`; with submounts stacked on it, `EBUSY`
///   unless `MNT_DETACH`, which removes the submounts too; `MNT_FORCE` is a plain umount.
///
/// The table starts empty. Nothing checks that source or target directories exist.
#[derive(Debug)]
pub struct FakeMounter {
    faults: Faults,
    table: Mutex<Table>,
}

impl FakeMounter {
    /// An empty mount table.
    pub fn new(faults: Faults) -> Self {
        FakeMounter {
            faults,
            table: Mutex::new(Table {
                mounts: Vec::new(),
                shared: Vec::new(),
                next_id: 1,
            }),
        }
    }

    /// The table in mount order, with flags and ids (not counted as a call; never faulted).
    pub fn table(&self) -> Vec<FakeMount> {
        lock(&self.table).mounts.clone()
    }

    /// The mounts shared into containers' namespaces that still exist (not counted as a call).
    pub fn shared(&self) -> Vec<FakeSharedMount> {
        lock(&self.table).shared.clone()
    }

    /// The mount namespace of process `pid` is gone (its last process exited): the mounts
    /// shared into it go with it. [`crate::FakeHost`] calls this on every exit.
    pub fn namespace_gone(&self, pid: i32) {
        lock(&self.table).shared.retain(|m| m.share.dst_pid != pid);
    }

    /// The top mount on `target`, if any (not counted as a call).
    pub fn top(&self, target: &Path) -> Option<FakeMount> {
        let table = lock(&self.table);
        table.top(target).map(|i| table.mounts[i].clone())
    }

    /// How many mounts are stacked on `target` (not counted as a call).
    pub fn depth(&self, target: &Path) -> usize {
        lock(&self.table)
            .mounts
            .iter()
            .filter(|m| m.target == target)
            .count()
    }

    /// Adds a mount made by another fake (a pinned namespace's nsfs bind), without counting a
    /// call: it shows in the table and leaks like any other mount.
    pub(crate) fn insert(&self, source: &str, target: &Path, fstype: &str) {
        let mut table = lock(&self.table);
        let id = table.next_id;
        table.next_id += 1;
        table.mounts.push(FakeMount {
            id,
            source: source.to_owned(),
            target: target.to_owned(),
            fstype: fstype.to_owned(),
            flags: MsFlags::MS_BIND,
            data: None,
        });
    }

    fn remount(table: &mut Table, spec: &MountSpec) -> io::Result<()> {
        let idx = table
            .top(&spec.target)
            .ok_or_else(|| errno(Errno::EINVAL))?;
        let mount = &mut table.mounts[idx];
        let keep = MsFlags::MS_BIND | PROPAGATION;
        let changeable =
            MsFlags::MS_RDONLY | SHOWN.iter().fold(MsFlags::empty(), |a, (f, _)| a | *f);
        mount.flags = (mount.flags & keep) | (spec.flags & changeable);
        if !spec.flags.contains(MsFlags::MS_BIND) && spec.data.is_some() {
            mount.data.clone_from(&spec.data);
        }
        Ok(())
    }

    fn propagate(table: &mut Table, spec: &MountSpec) -> io::Result<()> {
        let Some(idx) = table.top(&spec.target) else {
            return if spec.target == Path::new("/") {
                Ok(())
            } else {
                Err(errno(Errno::EINVAL))
            };
        };
        let mount = &mut table.mounts[idx];
        mount.flags = (mount.flags - PROPAGATION) | (spec.flags & PROPAGATION);
        Ok(())
    }

    fn move_mount(table: &mut Table, spec: &MountSpec) -> io::Result<()> {
        let from = PathBuf::from(spec.source.as_deref().ok_or_else(|| errno(Errno::EINVAL))?);
        let idx = table.top(&from).ok_or_else(|| errno(Errno::EINVAL))?;
        for j in std::iter::once(idx).chain(table.children(idx)) {
            let rest = table.mounts[j]
                .target
                .strip_prefix(&from)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            table.mounts[j].target = if rest.as_os_str().is_empty() {
                spec.target.clone()
            } else {
                spec.target.join(rest)
            };
        }
        Ok(())
    }

    fn add(table: &mut Table, spec: &MountSpec) -> io::Result<()> {
        let source = spec.source.clone().ok_or_else(|| errno(Errno::EINVAL))?;
        let (fstype, data) = if spec.flags.contains(MsFlags::MS_BIND) {
            ("none".to_owned(), None)
        } else {
            let fstype = spec.fstype.clone().ok_or_else(|| errno(Errno::EINVAL))?;
            if fstype.is_empty() {
                return Err(errno(Errno::ENODEV));
            }
            (fstype, spec.data.clone())
        };
        let id = table.next_id;
        table.next_id += 1;
        table.mounts.push(FakeMount {
            id,
            source,
            target: spec.target.clone(),
            fstype,
            // MS_REC and friends are call modifiers, not mount state.
            flags: spec.flags - MsFlags::MS_REC - MsFlags::MS_SILENT,
            data,
        });
        Ok(())
    }
}

impl Mounter for FakeMounter {
    fn mount(&self, spec: &MountSpec) -> io::Result<()> {
        self.faults.check(Op::Mount)?;
        let mut table = lock(&self.table);
        if spec.flags.contains(MsFlags::MS_REMOUNT) {
            Self::remount(&mut table, spec)
        } else if spec.flags.intersects(PROPAGATION) {
            Self::propagate(&mut table, spec)
        } else if spec.flags.contains(MsFlags::MS_MOVE) {
            Self::move_mount(&mut table, spec)
        } else {
            Self::add(&mut table, spec)
        }
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        self.faults.check(Op::Umount)?;
        let mut table = lock(&self.table);
        let idx = table.top(target).ok_or_else(|| errno(Errno::EINVAL))?;
        let children = table.children(idx);
        if !children.is_empty() && !flags.contains(MntFlags::MNT_DETACH) {
            return Err(errno(Errno::EBUSY));
        }
        for j in children.into_iter().rev() {
            table.mounts.remove(j);
        }
        table.mounts.remove(idx);
        Ok(())
    }

    /// Records the shared mount; paths must be absolute (`EINVAL`). Whether the processes
    /// exist is the agent's to check (the fake has no view of them); it never waits.
    fn share_mount(&self, share: &ShareMount) -> io::Result<()> {
        self.faults.check(Op::ShareMount)?;
        if !share.src_path.is_absolute() || !share.dst_path.is_absolute() {
            return Err(errno(Errno::EINVAL));
        }
        let mut table = lock(&self.table);
        let id = table.next_id;
        table.next_id += 1;
        table.shared.push(FakeSharedMount {
            id,
            share: share.clone(),
        });
        Ok(())
    }

    fn mounts(&self) -> io::Result<Vec<MountEntry>> {
        self.faults.check(Op::Mounts)?;
        Ok(lock(&self.table)
            .mounts
            .iter()
            .map(FakeMount::entry)
            .collect())
    }
}
