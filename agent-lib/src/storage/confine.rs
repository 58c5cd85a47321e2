//! Where storages may be mounted: only below the directories Kata's runtime puts them in.
//!
//! Every mount point Kata's runtimes send lies below `/run/kata-containers`: the shared
//! directory (`shared/containers/<id>`, `shared/` for nydus), the sandbox's `sandbox/shm`,
//! `sandbox/ephemeral/<name>` (emptyDir and hugepages volumes), `sandbox/local/<name>`,
//! `sandbox/storage/<device>` (block volumes), `virtual-volumes/` and `<cid>/<suffix>` (guest
//! pulled images). A rootless runtime prefixes them with `/run/user/<uid>` (Kata's
//! `rootless.GetRootlessDir()`), which is accepted too. A storage elsewhere (`/etc`, `/`, `/run/kata-containers` itself) would lay a
//! filesystem over the guest's own files, so it is refused.

use std::path::{Component, Path, PathBuf};

use super::error::StorageError;
use super::request::check_absolute;

/// The directory Kata's guest storages live in.
pub const KATA_GUEST_DIR: &str = "/run/kata-containers";

/// The directories storages may be mounted strictly below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountRoots(Vec<PathBuf>);

impl Default for MountRoots {
    /// [`KATA_GUEST_DIR`] only.
    fn default() -> Self {
        MountRoots(vec![PathBuf::from(KATA_GUEST_DIR)])
    }
}

impl MountRoots {
    /// Storages confined below `roots` (absolute paths; tests on a real kernel use a tempdir).
    pub fn new<P: Into<PathBuf>>(roots: impl IntoIterator<Item = P>) -> Self {
        MountRoots(roots.into_iter().map(Into::into).collect())
    }

    /// `mount_point` normalised (no `.`, no repeated or trailing `/`), if it is absolute, has
    /// no `..` and lies strictly below one of the roots; otherwise an `INVALID_ARGUMENT` error
    /// naming it.
    pub fn confine(&self, mount_point: &Path) -> Result<PathBuf, StorageError> {
        check_absolute("mount_point", mount_point)?;
        let normal: PathBuf = mount_point
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect();
        let unprefixed = without_rootless_prefix(&normal);
        let below = |p: &Path| self.0.iter().any(|root| p.starts_with(root) && p != root);
        if below(&normal) || unprefixed.as_deref().is_some_and(below) {
            return Ok(normal);
        }
        let roots: Vec<String> = self.0.iter().map(|r| r.display().to_string()).collect();
        Err(StorageError::request(
            "mount_point",
            format!(
                "{} is not below {}: storages are mounted only in the agent's directories",
                mount_point.display(),
                roots.join(" or ")
            ),
        ))
    }
}

/// `path` without a leading `/run/user/<uid>` (a non-zero uid in canonical form), if it has one.
fn without_rootless_prefix(path: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix("/run/user").ok()?;
    let mut parts = rest.components();
    let Some(Component::Normal(uid)) = parts.next() else {
        return None;
    };
    let uid = uid.to_str()?;
    let canonical = uid
        .parse::<u32>()
        .is_ok_and(|n| n != 0 && n.to_string() == uid);
    canonical.then(|| Path::new("/").join(parts.as_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_strictly_below_the_kata_directory_pass() {
        let roots = MountRoots::default();
        let ok = |p: &str| roots.confine(Path::new(p)).unwrap();
        assert_eq!(
            ok("/run/kata-containers/sandbox/ephemeral/cache"),
            Path::new("/run/kata-containers/sandbox/ephemeral/cache")
        );
        assert_eq!(
            ok("/run/kata-containers//shared/./containers/c1/"),
            Path::new("/run/kata-containers/shared/containers/c1")
        );
        assert_eq!(
            ok("/run/user/1000/run/kata-containers/shared/containers/c1"),
            Path::new("/run/user/1000/run/kata-containers/shared/containers/c1")
        );
        for bad in [
            "/run/user/0/run/kata-containers/x",
            "/run/user/01000/run/kata-containers/x",
            "/run/user/1000/etc",
            "/run/user/1000/run/kata-containers",
            "/etc",
            "/",
            "/run/kata-containers",
            "/run/kata-containers/",
            "/run/kata-containers/../../etc",
            "/run/kata-containers-evil/x",
            "/run/katax",
            "run/kata-containers/x",
            "/dev/hugepages",
        ] {
            let err = roots.confine(Path::new(bad)).unwrap_err();
            assert!(err.is_invalid_input(), "{bad}: {err}");
            assert!(err.to_string().contains("mount_point"), "{err}");
        }
    }
}
