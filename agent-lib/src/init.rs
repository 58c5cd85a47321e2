//! What the agent does first when it is the guest's init (PID 1): the pseudo filesystems, the
//! cgroup hierarchy and the loopback link.
//!
//! Everything goes through the host seams, so the sequence runs unchanged on the fakes.

use std::path::Path;

use nix::mount::MsFlags;

use crate::host::{AgentFiles, LinkUpdate, MountSpec, Mounter, Netlink, Sysfs};

/// A step of guest initialisation that failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A directory for a mount point could not be created.
    #[error("cannot create mount point {path}")]
    MountPoint {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A filesystem could not be mounted.
    #[error("cannot mount {fstype} on {target}")]
    Mount {
        /// Filesystem type.
        fstype: String,
        /// Mount point.
        target: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// /proc/cgroups could not be read.
    #[error("cannot read /proc/cgroups")]
    ProcCgroups(#[source] std::io::Error),
    /// The loopback link could not be brought up.
    #[error("cannot bring lo up")]
    Loopback(#[source] std::io::Error),
}

const NOSUID: MsFlags = MsFlags::MS_NOSUID;
const NODEV: MsFlags = MsFlags::MS_NODEV;
const NOEXEC: MsFlags = MsFlags::MS_NOEXEC;

/// The pseudo filesystems a guest needs, in mount order: (source, target, fstype, flags, data).
const BASE_MOUNTS: &[(&str, &str, &str, MsFlags, &str)] = &[
    (
        "proc",
        "/proc",
        "proc",
        NOSUID.union(NODEV).union(NOEXEC),
        "",
    ),
    (
        "sysfs",
        "/sys",
        "sysfs",
        NOSUID.union(NODEV).union(NOEXEC),
        "",
    ),
    ("dev", "/dev", "devtmpfs", NOSUID, "mode=0755"),
    (
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        NOSUID.union(NODEV),
        "mode=1777",
    ),
    (
        "devpts",
        "/dev/pts",
        "devpts",
        NOSUID.union(NOEXEC),
        "newinstance,ptmxmode=0666,mode=0620",
    ),
    ("tmpfs", "/run", "tmpfs", NOSUID.union(NODEV), "mode=0755"),
];

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Mounts /proc, /sys, /dev, /dev/shm, /dev/pts and /run, skipping what is already mounted with
/// the same type. Yields to the runtime after each mount, so an agent already listening
/// answers meanwhile.
pub async fn mount_base(mounter: &dyn Mounter, files: &dyn AgentFiles) -> Result<(), InitError> {
    for (source, target, fstype, flags, data) in BASE_MOUNTS {
        mount_once(mounter, files, source, target, fstype, *flags, data)?;
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Mounts /proc only (unless it is mounted): all the agent needs before it listens, since its
/// configuration lives in /proc/cmdline. [`mount_base`] does the rest later.
pub fn mount_proc(mounter: &dyn Mounter, files: &dyn AgentFiles) -> Result<(), InitError> {
    let (source, target, fstype, flags, data) = BASE_MOUNTS[0];
    mount_once(mounter, files, source, target, fstype, flags, data)
}

fn mount_once(
    mounter: &dyn Mounter,
    files: &dyn AgentFiles,
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), InitError> {
    let already = mounter
        .mounts()
        .map(|table| {
            table
                .iter()
                .any(|m| m.target == Path::new(target) && m.fstype == fstype)
        })
        .unwrap_or(false);
    if already {
        tracing::debug!(target, fstype, "already mounted");
        return Ok(());
    }
    files
        .create_dir_all(Path::new(target))
        .map_err(|source| InitError::MountPoint {
            path: target.to_owned(),
            source,
        })?;
    let mut spec = MountSpec::new(source, target, fstype).flags(flags);
    if !data.is_empty() {
        spec = spec.data(data);
    }
    mounter.mount(&spec).map_err(|source| InitError::Mount {
        fstype: fstype.to_owned(),
        target: target.to_owned(),
        source,
    })?;
    tracing::info!(target, fstype, "mounted");
    Ok(())
}

/// Mounts the cgroup hierarchy: cgroup2 when `unified`, else a tmpfs with one cgroup v1
/// filesystem per controller enabled in /proc/cgroups. Yields to the runtime after each mount.
pub async fn mount_cgroups(
    mounter: &dyn Mounter,
    sysfs: &dyn Sysfs,
    files: &dyn AgentFiles,
    unified: bool,
) -> Result<(), InitError> {
    let flags = NOSUID | NODEV | NOEXEC | MsFlags::MS_RELATIME;
    if unified {
        return mount_once(
            mounter,
            files,
            "cgroup2",
            CGROUP_ROOT,
            "cgroup2",
            flags,
            "nsdelegate",
        );
    }
    mount_once(
        mounter,
        files,
        "tmpfs",
        CGROUP_ROOT,
        "tmpfs",
        NOSUID | NODEV | NOEXEC,
        "mode=755",
    )?;
    let table = sysfs
        .read_string(Path::new("/proc/cgroups"))
        .map_err(InitError::ProcCgroups)?;
    for controller in enabled_controllers(&table) {
        tokio::task::yield_now().await;
        let target = format!("{CGROUP_ROOT}/{controller}");
        mount_once(
            mounter, files, "cgroup", &target, "cgroup", flags, controller,
        )?;
    }
    // v1 only: account memory hierarchically, as v2 always does. Best effort, as in Kata.
    let use_hierarchy = Path::new("/sys/fs/cgroup/memory/memory.use_hierarchy");
    if let Err(e) = sysfs.write(use_hierarchy, b"1") {
        tracing::warn!(error = %e, "cannot enable memory.use_hierarchy");
    }
    Ok(())
}

/// The enabled controllers listed in /proc/cgroups
/// (`#subsys_name hierarchy num_cgroups enabled`), skipping malformed lines.
fn enabled_controllers(table: &str) -> Vec<&str> {
    table
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [name, hierarchy, count, enabled]
                    if !name.is_empty()
                        && hierarchy.parse::<u64>().is_ok()
                        && count.parse::<u64>().is_ok()
                        && *enabled == "1" =>
                {
                    Some(*name)
                }
                _ => None,
            }
        })
        .collect()
}

/// Brings the loopback link up.
pub async fn bring_up_loopback(netlink: &dyn Netlink) -> Result<(), InitError> {
    let lo = netlink
        .link_by_name("lo")
        .await
        .map_err(InitError::Loopback)?;
    if lo.is_up() {
        return Ok(());
    }
    let update = LinkUpdate {
        up: Some(true),
        ..LinkUpdate::default()
    };
    netlink
        .set_link(lo.index, &update)
        .await
        .map_err(InitError::Loopback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroups_parsing_skips_disabled_and_garbage() {
        let table = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                     cpuset\t2\t1\t1\n\
                     cpu\t3\t1\t1\n\
                     memory\t0\t1\t0\n\
                     pids\tx\t1\t1\n\
                     truncated\t1\n\
                     \n\
                     devices\t5\t40\t1\n";
        assert_eq!(enabled_controllers(table), ["cpuset", "cpu", "devices"]);
    }
}
