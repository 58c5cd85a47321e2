//! `shared_mounts` of CreateContainer: a mount of a running container made visible in the new
//! one (Kata's `SharedMount`, from the runtime's `shared_mounts` configuration).
//!
//! Containers are found by their Kubernetes container name (the `io.kubernetes.cri.container-name`
//! or `io.kubernetes.cri-o.ContainerName` annotation), as Kata does, or else by id. Everything is
//! checked before anything is created; the mounts are made once the new container's init
//! exists (held, its rootfs set up), through [`Mounter::share_mount`](crate::host::Mounter) on
//! the blocking pool, so a source slow to mount its path never holds up other RPCs. A failure
//! undoes the container, and with its mount namespace goes every clone made into it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::Spec;

use super::{Container, ContainerError, Containers, Slot, Status};
use crate::host::ShareMount;

/// How long the source's mount point is waited for (Kata: 10 s).
pub const SHARED_MOUNT_WAIT: Duration = Duration::from_secs(10);

/// The annotations naming a Kubernetes container (containerd's, then CRI-O's).
const NAME_ANNOTATIONS: [&str; 2] = [
    "io.kubernetes.cri.container-name",
    "io.kubernetes.cri-o.ContainerName",
];

/// Kata's `SharedMount`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedMount {
    /// The configuration entry's name (for messages).
    pub name: String,
    /// The source container's name.
    pub src_ctr: String,
    /// The mount point in the source container.
    pub src_path: String,
    /// The destination container's name: the one being created (empty: not checked).
    pub dst_ctr: String,
    /// Where it appears in the new container.
    pub dst_path: String,
}

/// A checked shared mount: its source's init pid and both paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Planned {
    name: String,
    src_pid: i32,
    src_path: PathBuf,
    dst_path: PathBuf,
}

/// The Kubernetes name of a container, from its spec's annotations.
pub fn container_name(spec: &Spec) -> Option<&str> {
    let annotations = spec.annotations().as_ref()?;
    NAME_ANNOTATIONS
        .iter()
        .find_map(|key| annotations.get(*key).map(String::as_str))
}

fn invalid(mount: &SharedMount, what: String) -> ContainerError {
    ContainerError::InvalidSpec(format!("shared_mounts {:?}: {what}", mount.name))
}

fn absolute(mount: &SharedMount, field: &str, path: &str) -> Result<PathBuf, ContainerError> {
    let p = Path::new(path);
    if !p.is_absolute() || path.contains('\0') {
        return Err(invalid(
            mount,
            format!("{field} {path:?} is not an absolute path"),
        ));
    }
    Ok(p.to_owned())
}

impl Containers {
    /// Checks `mounts` for the container `cid` with `spec`: absolute paths, the destination is
    /// this container, the source exists and runs. Touches nothing.
    pub(super) fn plan_shared_mounts(
        &self,
        cid: &str,
        spec: &Spec,
        mounts: &[SharedMount],
    ) -> Result<Vec<Planned>, ContainerError> {
        let own_name = container_name(spec).unwrap_or(cid);
        mounts
            .iter()
            .map(|m| {
                let src_path = absolute(m, "src_path", &m.src_path)?;
                let dst_path = absolute(m, "dst_path", &m.dst_path)?;
                if !m.dst_ctr.is_empty() && m.dst_ctr != own_name && m.dst_ctr != cid {
                    return Err(invalid(
                        m,
                        format!(
                            "dst_ctr {:?} is not this container ({own_name:?})",
                            m.dst_ctr
                        ),
                    ));
                }
                let source = self.find_by_name(&m.src_ctr).ok_or_else(|| {
                    ContainerError::SharedMountSource {
                        mount: m.name.clone(),
                        source_name: m.src_ctr.clone(),
                        state: None,
                    }
                })?;
                let status = source.status();
                if status != Status::Running {
                    return Err(ContainerError::SharedMountSource {
                        mount: m.name.clone(),
                        source_name: m.src_ctr.clone(),
                        state: Some(status.name()),
                    });
                }
                Ok(Planned {
                    name: m.name.clone(),
                    src_pid: source.init.pid(),
                    src_path,
                    dst_path,
                })
            })
            .collect()
    }

    /// The container named `name` (its Kubernetes name, or else its id).
    fn find_by_name(&self, name: &str) -> Option<std::sync::Arc<Container>> {
        let slots = self.slots();
        let ready = || {
            slots.values().filter_map(|s| match s {
                Slot::Ready(c) => Some(c),
                Slot::Creating => None,
            })
        };
        ready()
            .find(|c| container_name(&c.setup.spec) == Some(name))
            .or_else(|| ready().find(|c| c.id == name))
            .cloned()
    }

    /// Makes each planned mount in the namespace of `dst_pid`, in order, on the blocking pool.
    pub(super) async fn make_shared_mounts(
        &self,
        cid: &str,
        dst_pid: i32,
        planned: Vec<Planned>,
    ) -> Result<(), ContainerError> {
        for p in planned {
            let share = ShareMount {
                src_pid: p.src_pid,
                src_path: p.src_path,
                dst_pid,
                dst_path: p.dst_path,
                wait: SHARED_MOUNT_WAIT,
            };
            let step = format!(
                "shared mount {:?} ({} on {})",
                p.name,
                share.src_path.display(),
                share.dst_path.display()
            );
            let mounter = self.host.mounter.clone();
            let result = tokio::task::spawn_blocking(move || mounter.share_mount(&share))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            result.map_err(ContainerError::step(cid, step))?;
            tracing::info!(container = cid, mount = %p.name, "shared mount made");
        }
        Ok(())
    }
}
