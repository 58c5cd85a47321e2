//! Reading the container's /etc/passwd and /etc/group, and applying a `string_user` to its
//! OCI process.
//!
//! The files are read through the [`FileTree`] seam from a handle on the container's root:
//! one plain name at a time beneath that directory, never through a symbolic link (a link is
//! refused with `ELOOP` rather than followed), so nothing outside the rootfs, and nothing of
//! the guest's, is ever read.

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use oci_spec::runtime::Process as OciProcess;

use super::user::{StringUser, UserError, resolve};
use crate::host::{FileTree, OpenMode, TreeDir};

/// The largest passwd or group file read (a bigger one is refused, not truncated).
const MAX_FILE: u64 = 4 << 20;

/// The container's user database; `None` for a missing file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDb {
    /// /etc/passwd.
    pub passwd: Option<String>,
    /// /etc/group.
    pub group: Option<String>,
}

/// Reads `/etc/passwd` and `/etc/group` beneath the rootfs at `root`.
pub fn read_user_db(files: &dyn FileTree, root: &Path) -> Result<UserDb, UserError> {
    let read = |file: &'static str, source: io::Error| UserError::Read { file, source };
    let root = files.open_base(root).map_err(|e| read("/etc/passwd", e))?;
    let etc = match root.walk(Path::new("etc"), None) {
        Ok(etc) => etc,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(UserDb::default()),
        Err(e) => return Err(read("/etc/passwd", e)),
    };
    Ok(UserDb {
        passwd: read_file(&*etc, "passwd").map_err(|e| read("/etc/passwd", e))?,
        group: read_file(&*etc, "group").map_err(|e| read("/etc/group", e))?,
    })
}

fn read_file(etc: &dyn TreeDir, name: &str) -> io::Result<Option<String>> {
    let file = match etc.open_file(OsStr::new(name), OpenMode::Read) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if file.size()? > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    let data = file.read_head(MAX_FILE as usize)?;
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

/// Resolves `user` against the rootfs at `root` and writes the result into `process.user`:
/// uid, gid, and the supplementary groups (the spec's first, then the resolved ones).
pub fn apply_string_user(
    files: &dyn FileTree,
    root: &Path,
    user: &StringUser,
    process: &mut OciProcess,
) -> Result<(), UserError> {
    let db = read_user_db(files, root)?;
    let mut oci_user = process.user().clone();
    let resolved = resolve(
        user,
        oci_user.uid(),
        oci_user.gid(),
        db.passwd.as_deref(),
        db.group.as_deref(),
    )?;
    let mut gids = oci_user.additional_gids().clone().unwrap_or_default();
    for gid in resolved.additional_gids {
        if !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    tracing::debug!(
        uid = resolved.uid,
        gid = resolved.gid,
        ?gids,
        "string_user resolved"
    );
    oci_user.set_uid(resolved.uid);
    oci_user.set_gid(resolved.gid);
    oci_user.set_additional_gids((!gids.is_empty()).then_some(gids));
    process.set_user(oci_user);
    Ok(())
}
