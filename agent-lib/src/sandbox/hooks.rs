//! Guest OCI hooks: executables the guest image ships under `<guest_hook_path>/<kind>/`.

use std::path::Path;

use oci_spec::runtime::{Hook, Hooks};

use crate::host::{NodeKind, Sysfs};

/// Scans `dir/prestart`, `dir/poststart` and `dir/poststop` for executable regular files
/// (symbolic links are refused); each becomes a hook run as `<name> <kind>`. A missing or
/// unreadable folder contributes no hooks, as in Kata.
pub(crate) fn scan(sysfs: &dyn Sysfs, dir: &Path) -> Hooks {
    let mut hooks = Hooks::default();
    hooks.set_prestart(Some(scan_kind(sysfs, dir, "prestart")));
    hooks.set_poststart(Some(scan_kind(sysfs, dir, "poststart")));
    hooks.set_poststop(Some(scan_kind(sysfs, dir, "poststop")));
    hooks
}

fn scan_kind(sysfs: &dyn Sysfs, dir: &Path, kind: &str) -> Vec<Hook> {
    let folder = dir.join(kind);
    let names = match sysfs.read_dir(&folder) {
        Ok(names) => names,
        Err(e) => {
            tracing::debug!(folder = %folder.display(), error = %e, "no guest hooks");
            return Vec::new();
        }
    };
    let mut hooks = Vec::new();
    for name in names {
        let path = folder.join(&name);
        if sysfs.read_link(&path).is_ok() {
            tracing::warn!(path = %path.display(), "ignoring a guest hook that is a symbolic link");
            continue;
        }
        match sysfs.stat(&path) {
            Ok(info) if info.kind == NodeKind::File && info.mode & 0o111 != 0 => {}
            _ => {
                tracing::warn!(path = %path.display(), "ignoring a guest hook that is not an executable file");
                continue;
            }
        }
        let mut hook = Hook::default();
        hook.set_path(path.clone());
        hook.set_args(Some(vec![
            name.to_string_lossy().into_owned(),
            kind.to_owned(),
        ]));
        tracing::info!(path = %path.display(), kind, "found guest hook");
        hooks.push(hook);
    }
    hooks
}
