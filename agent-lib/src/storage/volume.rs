//! The storage RPCs' operations: swap, volume statistics and growth, ephemeral remounts and
//! the refresh of virtio-fs share mounts.

use std::path::Path;

use nix::mount::MsFlags;

use super::confine::MountRoots;
use super::error::StorageError;
use super::options::MountOptions;
use super::request::{StorageRequest, check_absolute};
use crate::device::{self, DeviceContext, PciPath};
use crate::host::{
    ExitStatus, Host, LaunchRequest, LaunchTarget, MountSpec, ProcessSpec, StdioMode,
};

/// Where the host's shared directory shows the containers' files.
pub const SHARED_CONTAINERS_DIR: &str = "/run/kata-containers/shared/containers/";

/// Usage of one resource of a volume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VolumeUsage {
    /// Total.
    pub total: u64,
    /// Free.
    pub available: u64,
    /// `total - available`.
    pub used: u64,
}

/// What GetVolumeStats reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VolumeStats {
    /// Bytes.
    pub bytes: VolumeUsage,
    /// Inodes.
    pub inodes: VolumeUsage,
}

/// Enables swap on the virtio-blk disk at `pci_path` (root complex 00), waiting for it up to
/// the hotplug timeout.
pub async fn add_swap_pci(
    host: &Host,
    devices: &DeviceContext,
    pci_path: &PciPath,
) -> Result<(), StorageError> {
    let disk = device::virtio_blk_pci(devices, pci_path).await?;
    tracing::info!(device = %disk.path.display(), %pci_path, "enabling swap");
    host.system
        .swapon(&disk.path)
        .map_err(|e| StorageError::os("swapon", &disk.path, e))
}

/// Enables swap on the file or device `path`.
pub fn add_swap_path(host: &Host, path: &Path) -> Result<(), StorageError> {
    check_absolute("path", path)?;
    host.system
        .swapon(path)
        .map_err(|e| StorageError::os("swapon", path, e))
}

/// Bytes and inodes used on the filesystem holding `path` (GetVolumeStats). Like Kata,
/// "available" counts every free block, including those reserved for root.
pub fn volume_stats(host: &Host, path: &Path) -> Result<VolumeStats, StorageError> {
    check_absolute("volume_guest_path", path)?;
    host.sysfs
        .stat(path)
        .map_err(|_| StorageError::NoVolume(path.to_owned()))?;
    let st = host
        .system
        .statfs(path)
        .map_err(|e| StorageError::os("statfs", path, e))?;
    let usage = |total: u64, free: u64| VolumeUsage {
        total,
        available: free,
        used: total.saturating_sub(free),
    };
    Ok(VolumeStats {
        bytes: usage(
            st.blocks.saturating_mul(st.block_size),
            st.blocks_free.saturating_mul(st.block_size),
        ),
        inodes: usage(st.files, st.files_free),
    })
}

/// Grows the filesystem mounted at `path` to fill its (resized) block device: `resize2fs
/// <device>` for ext2/3/4, `xfs_growfs <mount point>` for xfs; other filesystems are
/// unsupported. Kata's agent leaves ResizeVolume unimplemented.
pub async fn resize_volume(host: &Host, path: &Path) -> Result<(), StorageError> {
    check_absolute("volume_guest_path", path)?;
    let mounts = host
        .mounter
        .mounts()
        .map_err(|e| StorageError::os("read mount table", path, e))?;
    let entry = mounts
        .iter()
        .rev()
        .find(|m| m.target == path)
        .ok_or_else(|| StorageError::NoVolume(path.to_owned()))?;
    let (program, arg) = match entry.fstype.as_str() {
        "ext2" | "ext3" | "ext4" => ("resize2fs", entry.source.clone()),
        "xfs" => ("xfs_growfs", path.to_string_lossy().into_owned()),
        other => {
            return Err(StorageError::Unsupported(format!(
                "resizing a {other} filesystem ({}); only ext4 and xfs grow online",
                path.display()
            )));
        }
    };
    tracing::info!(program, %arg, "growing volume filesystem");
    let request = LaunchRequest {
        process: ProcessSpec {
            args: vec![program.to_owned(), arg],
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_owned()],
            cwd: "/".into(),
            ..ProcessSpec::default()
        },
        stdio: StdioMode::Null,
        target: LaunchTarget::Host,
        ..LaunchRequest::default()
    };
    let fail = |reason: String| StorageError::Command {
        program: program.to_owned(),
        reason,
    };
    let launched = host
        .launcher
        .launch(&request)
        .await
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    match launched.exit.await {
        Ok(ExitStatus::Exited(0)) => Ok(()),
        Ok(status) => Err(fail(format!("exit code {}", status.code()))),
        Err(_) => Err(fail("its exit was lost".to_owned())),
    }
}

/// Remounts ephemeral (tmpfs) storages with new options (UpdateEphemeralMounts): a
/// `size=` change after a memory resize, typically. Only the `ephemeral` driver is accepted;
/// `fsgid=` is ignored, `remount` is implied. Each mount point must be mounted and lie below
/// `roots`.
pub fn update_ephemeral_mounts(
    host: &Host,
    roots: &MountRoots,
    requests: &[StorageRequest],
) -> Result<(), StorageError> {
    // Check all before changing any.
    let mut plan = Vec::new();
    for request in requests {
        if request.driver != "ephemeral" {
            return Err(StorageError::Unsupported(format!(
                "updating {:?} storage {}; only ephemeral storages can be updated",
                request.driver,
                request.mount_point.display()
            )));
        }
        request.validate()?;
        roots.confine(&request.mount_point)?;
        if request.options.is_empty() {
            continue;
        }
        let options =
            MountOptions::parse_remount(&StorageRequest::without(&request.options, &["fsgid"]))?;
        plan.push((request, options));
    }
    for (request, options) in plan {
        let target = &request.mount_point;
        let mounted = host
            .mounter
            .is_mounted(target)
            .map_err(|e| StorageError::os("read mount table", target, e))?;
        if !mounted {
            return Err(StorageError::NoVolume(target.clone()));
        }
        let spec = MountSpec {
            source: Some(if request.source.is_empty() {
                "tmpfs".to_owned()
            } else {
                request.source.clone()
            }),
            target: target.clone(),
            fstype: Some(if request.fstype.is_empty() {
                "tmpfs".to_owned()
            } else {
                request.fstype.clone()
            }),
            flags: options.flags | MsFlags::MS_REMOUNT,
            data: options.data_string(),
        };
        tracing::info!(target = %target.display(), data = ?spec.data, "remounting ephemeral storage");
        host.mounter
            .mount(&spec)
            .map_err(|e| StorageError::os("remount", target, e))?;
    }
    Ok(())
}

/// Stats every mount point under [`SHARED_CONTAINERS_DIR`], so virtiofsd drops the inodes of
/// files the host removed (Kata issue #6455). Failures are logged, not returned: a stale mount
/// is exactly what this looks for.
pub fn remove_stale_virtiofs_share_mounts(host: &Host) -> Result<(), StorageError> {
    let mounts = host
        .mounter
        .mounts()
        .map_err(|e| StorageError::os("read mount table", SHARED_CONTAINERS_DIR, e))?;
    for m in mounts
        .iter()
        .filter(|m| m.target.starts_with(SHARED_CONTAINERS_DIR))
    {
        match host.sysfs.stat(&m.target) {
            Ok(_) => tracing::info!(mount_point = %m.target.display(), "stat ok"),
            Err(e) => tracing::info!(mount_point = %m.target.display(), error = %e, "stat failed"),
        }
    }
    Ok(())
}
