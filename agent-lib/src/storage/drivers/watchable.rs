//! `watchable-bind`: a small host directory copied into a tmpfs and kept current by polling,
//! for sources without inotify (ConfigMaps and Secrets over virtio-fs).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use nix::mount::MsFlags;

use super::{need_source, no_driver_options};
use crate::host::{MountSpec, NodeKind};
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::fs;
use crate::storage::mirror::{Mirror, ScanError};
use crate::storage::request::{StorageRequest, check_absolute};
use crate::storage::undo::{Gate, Journal};

/// The tmpfs watchable storages live in (Go runtime).
pub const WATCH_ROOT: &str = "/run/kata-containers/shared/containers/watchable";
/// The tmpfs watchable storages live in (runtime-rs passthrough sharing).
pub const WATCH_ROOT_PASSTHROUGH: &str =
    "/run/kata-containers/shared/containers/passthrough/watchable";
/// How often sources are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// `watchable-bind`: copies `source` to the mount point, which must be directly inside
/// [`WATCH_ROOT`] or [`WATCH_ROOT_PASSTHROUGH`] (or their `/run/user/<uid>/...` rootless forms);
/// that directory gets a tmpfs, shared by every watchable storage and kept until the sandbox
/// goes. Every [`WATCH_INTERVAL`] a task copies what changed; a source that outgrows Kata's
/// limits (16 entries, 1 MiB) is bind-mounted instead and no longer polled. The task stops when
/// the storage is released.
#[derive(Debug, Default)]
pub struct WatchableBind;

#[async_trait]
impl StorageDriver for WatchableBind {
    fn name(&self) -> &'static str {
        "watchable-bind"
    }

    fn prerequisites(&self, request: &StorageRequest) -> Result<Vec<StorageRequest>, StorageError> {
        let root = watch_root(&request.mount_point)?;
        Ok(vec![
            StorageRequest::new("ephemeral", "tmpfs", "tmpfs", root).shared(),
        ])
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        no_driver_options(request)?;
        if !request.options.is_empty() {
            return Err(StorageError::option(
                request.options.join(","),
                "watchable-bind storages take no options",
            ));
        }
        let source = PathBuf::from(need_source(request)?);
        check_absolute("source", &source)?;
        let target = request.mount_point.clone();
        let sysfs = ctx.host.sysfs.clone();
        let meta = sysfs
            .symlink_metadata(&source)
            .map_err(|e| StorageError::os("inspect watched source", &source, e))?;
        if meta.kind == NodeKind::Dir {
            fs::create_dir_all(ctx.host, &target, undo)?;
        }
        undo.created_tree(&target);
        // A source that outgrows the limits is bind-mounted over the copy, by this call or
        // later by the poller: the release unmounts it (nothing mounted is fine).
        undo.mounted(&target);
        let mut mirror = Mirror::new(ctx.host.clone(), source.clone(), target.clone());
        match mirror.scan() {
            Ok(copied) => {
                tracing::info!(source = %source.display(), target = %target.display(), copied,
                    "watchable storage copied");
            }
            Err(ScanError::Failed(e)) => return Err(e),
            Err(ScanError::TooBig(why)) => {
                tracing::info!(%why, "watchable storage too big; bind-mounting it instead");
                if meta.kind != NodeKind::Dir {
                    fs::create_mount_point(ctx.host, &target, true, undo)?;
                }
                return bind(ctx.host.mounter.as_ref(), &source, &target);
            }
        }
        let gate = Gate::new();
        let mounter = ctx.host.mounter.clone();
        let task_gate = gate.clone();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + WATCH_INTERVAL;
            let mut interval = tokio::time::interval_at(start, WATCH_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let mut done = false;
                let ran = task_gate.run(|| match mirror.scan() {
                    Ok(0) => {}
                    Ok(copied) => tracing::debug!(target = %target.display(), copied,
                        "watchable storage updated"),
                    Err(ScanError::Failed(e)) => tracing::warn!(error = %e, "watchable scan"),
                    Err(ScanError::TooBig(why)) => {
                        tracing::info!(%why, "watchable storage too big; bind-mounting it");
                        match bind(mounter.as_ref(), &source, &target) {
                            Ok(()) => done = true,
                            Err(e) => tracing::error!(error = %e, "replacing watchable storage"),
                        }
                    }
                });
                if !ran || done {
                    break;
                }
            }
        });
        undo.spawned(task, gate);
        Ok(())
    }
}

fn bind(
    mounter: &dyn crate::host::Mounter,
    source: &Path,
    target: &Path,
) -> Result<(), StorageError> {
    mounter
        .mount(&MountSpec::bind(source, target).flags(MsFlags::empty()))
        .map_err(|e| StorageError::os("bind-mount watched source", target, e))
}

/// The tmpfs root of a watchable mount point: its parent, which must be a known root.
fn watch_root(mount_point: &Path) -> Result<PathBuf, StorageError> {
    check_absolute("mount_point", mount_point)?;
    let root = mount_point
        .parent()
        .ok_or_else(|| StorageError::request("mount_point", "has no parent"))?;
    let known = |p: &Path| p == Path::new(WATCH_ROOT) || p == Path::new(WATCH_ROOT_PASSTHROUGH);
    let rootless = root
        .strip_prefix("/run/user")
        .ok()
        .and_then(|rest| {
            let mut parts = rest.components();
            let Some(Component::Normal(uid)) = parts.next() else {
                return None;
            };
            let uid = uid.to_str()?;
            let valid = uid
                .parse::<u32>()
                .is_ok_and(|n| n != 0 && n.to_string() == uid);
            valid.then(|| Path::new("/").join(parts.as_path()))
        })
        .is_some_and(|p| known(&p));
    if known(root) || rootless {
        Ok(root.to_owned())
    } else {
        Err(StorageError::request(
            "mount_point",
            format!(
                "{} is not inside {WATCH_ROOT} or {WATCH_ROOT_PASSTHROUGH}",
                mount_point.display()
            ),
        ))
    }
}
