//! The OCI `cgroup` mount: what a container sees at `/sys/fs/cgroup` is its own cgroup only.
//!
//! On cgroup v1 (as runc and Kata's rustjail): a tmpfs with one directory per controller
//! hierarchy of the guest, each a bind mount of the container's own cgroup in that hierarchy,
//! plus the guest's links (`cpu` → `cpu,cpuacct`); read-only unless the spec says `rw`. The
//! container lists no other cgroup and cannot move itself out of its own (the parent's
//! `cgroup.procs` is not in its view). On cgroup v2 (as runc): the helper, born in the
//! container's cgroup, enters a new cgroup namespace first, so the `cgroup2` mount shows only the
//! container's subtree, read-only unless the spec says `rw`.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use super::error::{Result, SetupError, Step};
use super::in_root::fd_path;
use super::new_mount::{attach, new_fs};
use super::paths::{create_dirs, remount_readonly};
use crate::host::CgroupVersion;

/// Where the guest mounts its cgroup hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Mounts the container's view of its cgroup (`cgroup`, relative to the hierarchy roots, as
/// the agent wrote it into `linux.cgroupsPath`) on `dest`, with the mount's `flags`.
/// `target` is the mount point's descriptor; returns the new mount's.
pub(super) fn mount_cgroup(
    target: BorrowedFd<'_>,
    shown: &str,
    flags: MsFlags,
    cgroup: &Path,
) -> Result<OwnedFd> {
    let relative = cgroup.strip_prefix("/").unwrap_or(cgroup);
    if relative.as_os_str().is_empty() {
        return Err(SetupError::spec(
            "a cgroup mount needs the container's linux.cgroupsPath",
        ));
    }
    if crate::linux::detect_version() == CgroupVersion::V2 {
        return cgroup2(target, shown, flags, relative);
    }
    let kept = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    // The tmpfs is the helper's alone: paths below it can no longer be raced.
    let tmpfs = new_fs("tmpfs", "tmpfs", &["mode=755".to_owned()], kept, shown)?;
    attach(tmpfs.as_fd(), target, shown)?;
    let dest = fd_path(&tmpfs);
    let dest = dest.as_path();
    let readonly = flags.contains(MsFlags::MS_RDONLY);
    let mut bound = Vec::new();
    for (name, hierarchy) in hierarchies()? {
        let source = hierarchy.join(relative);
        if !source.is_dir() {
            // The container has no cgroup in this hierarchy (one mounted after its creation).
            continue;
        }
        let target = dest.join(&name);
        create_dirs(&target).step(|| format!("create {shown}/{name}"))?;
        mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step(|| format!("bind the container's {name} cgroup on {shown}/{name}"))?;
        if readonly {
            remount_readonly(&target, true, kept)?;
        } else if !kept.is_empty() {
            mount(
                None::<&str>,
                &target,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | kept,
                None::<&str>,
            )
            .step(|| format!("remount {shown}/{name} with its flags"))?;
        }
        bound.push(name);
    }
    links(dest, shown, &bound)?;
    if readonly {
        remount_readonly(dest, false, kept)?;
    }
    Ok(tmpfs)
}

/// The guest's cgroup v1 hierarchies: (name, mount point), from `/proc/self/mountinfo`.
pub(super) fn hierarchies() -> Result<Vec<(String, PathBuf)>> {
    let table = fs::read_to_string("/proc/self/mountinfo")
        .step(|| "read /proc/self/mountinfo".to_owned())?;
    let mut found = Vec::new();
    for line in table.lines() {
        let Some((head, tail)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = head.split(' ').nth(4).unwrap_or_default();
        let fstype = tail.split(' ').next().unwrap_or_default();
        let Some(name) = mount_point
            .strip_prefix(CGROUP_ROOT)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        if fstype == "cgroup" && !name.is_empty() && !name.contains('/') {
            found.push((name.to_owned(), PathBuf::from(mount_point)));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The guest's links between hierarchy names (`cpu` → `cpu,cpuacct`), for the bound ones.
fn links(dest: &Path, shown: &str, bound: &[String]) -> Result<()> {
    let Ok(entries) = fs::read_dir(CGROUP_ROOT) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let name = entry.file_name();
        if bound.iter().any(|b| Path::new(b) == target) {
            std::os::unix::fs::symlink(&target, dest.join(&name))
                .step(|| format!("link {shown}/{}", name.to_string_lossy()))?;
        }
    }
    Ok(())
}

/// cgroup v2: a new cgroup namespace rooted at the container's cgroup, then the mount, which
/// shows only that subtree. The helper was born in the cgroup (`clone3(CLONE_INTO_CGROUP)`, see
/// [`super::cgroup_join`]); it checks that rather than moving itself, so a helper anywhere else
/// fails instead of rooting the namespace above the container.
fn cgroup2(
    target: BorrowedFd<'_>,
    shown: &str,
    flags: MsFlags,
    relative: &Path,
) -> Result<OwnedFd> {
    let own = fs::read_to_string("/proc/self/cgroup")
        .step(|| "read the helper's cgroup (/proc/self/cgroup)".to_owned())?;
    let wanted = Path::new("/").join(relative);
    if v2_cgroup(&own) != Some(wanted.as_path()) {
        return Err(SetupError::spec(format!(
            "the helper is not in the container's cgroup {} (it is in {:?}): no cgroup mount",
            wanted.display(),
            own.trim()
        )));
    }
    unshare(CloneFlags::CLONE_NEWCGROUP).step(|| "unshare the cgroup namespace".to_owned())?;
    let mounted = new_fs("cgroup2", "cgroup2", &[], flags, shown)?;
    attach(mounted.as_fd(), target, shown)?;
    Ok(mounted)
}

/// The v2 cgroup (`0::<path>`) of a `/proc/<pid>/cgroup` text.
fn v2_cgroup(text: &str) -> Option<&Path> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| Path::new(p.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_cgroup_is_read_from_the_unified_line() {
        let text = "4:memory:/x\n0::/kata/c1\n";
        assert_eq!(v2_cgroup(text), Some(Path::new("/kata/c1")));
        assert_eq!(v2_cgroup("4:memory:/x\n"), None);
    }
}
