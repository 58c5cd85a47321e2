//! A container's bundle: `/run/kata-containers/<cid>/{rootfs,config.json}`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::ContainerError;
use super::teardown::{Step, Teardown};
use crate::host::Host;
use crate::sandbox::CONTAINER_BASE;
use crate::undo::Undo;

/// The bundle folder of container `cid`.
pub fn bundle_dir(cid: &str) -> PathBuf {
    Path::new(CONTAINER_BASE).join(cid)
}

/// Creates the bundle: binds the spec's root (the rootfs storage's mount point) on
/// `<bundle>/rootfs` unless it is that path already, points `root.path` there, and writes
/// the spec as `config.json` (hooks may read it). Every step is recorded in `teardown`.
pub(crate) fn prepare(
    host: &Host,
    cid: &str,
    spec: &mut Spec,
    teardown: &mut Teardown,
) -> Result<(), ContainerError> {
    let mut root = spec
        .root()
        .clone()
        .ok_or_else(|| ContainerError::InvalidSpec("the spec has no root".into()))?;
    let source = root.path().clone();
    if !source.is_absolute() {
        return Err(ContainerError::InvalidSpec(format!(
            "root.path {source:?} is not absolute"
        )));
    }
    let dir = bundle_dir(cid);
    let rootfs = dir.join("rootfs");
    host.agent_files
        .create_dir_all(&dir)
        .map_err(ContainerError::step(
            cid,
            format!("create {}", dir.display()),
        ))?;
    teardown.push(Step::Made(Undo::Remove(dir.clone())));
    if source != rootfs {
        host.agent_files
            .create_dir_all(&rootfs)
            .map_err(ContainerError::step(
                cid,
                format!("create {}", rootfs.display()),
            ))?;
        teardown.push(Step::Made(Undo::Remove(rootfs.clone())));
        host.mounter
            .bind(&source, &rootfs, false)
            .map_err(ContainerError::step(
                cid,
                format!("bind {} on {}", source.display(), rootfs.display()),
            ))?;
        teardown.push(Step::Made(Undo::Unmount(rootfs.clone())));
    }
    root.set_path(rootfs);
    spec.set_root(Some(root));
    let config = dir.join("config.json");
    let json = serde_json::to_vec_pretty(spec)
        .map_err(|e| ContainerError::InvalidSpec(format!("cannot encode the spec: {e}")))?;
    host.agent_files
        .create_file(&config, &json, 0o644)
        .map_err(ContainerError::step(
            cid,
            format!("write {}", config.display()),
        ))?;
    teardown.push(Step::Made(Undo::Remove(config)));
    Ok(())
}
