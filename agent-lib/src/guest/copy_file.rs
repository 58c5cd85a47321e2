//! CopyFile: the host copies files into the shared directory when the guest has no shared
//! filesystem (Kata's "file-copy" sharing), in chunks.
//!
//! Everything goes through the [`FileTree`] seam from a handle on [`SHARED_DIR`]: the path is
//! checked as text first (clear errors for `..` and foreign prefixes), then resolved one name at
//! a time beneath the directory's fd with symbolic links refused, so a link or fifo the
//! container planted, even between two chunks, is refused and nothing outside is touched.
//!
//! A regular file is written to a temporary name beside its target and renamed into place
//! when the last chunk makes its size `file_size`: readers never see a partial file, and an
//! older file at the target stays until then. Setuid and setgid bits from the host are
//! dropped: the host must not be able to plant set-id programs for the container. A symbolic
//! link's target is stored as sent and may point anywhere: the agent never follows links in
//! the shared directory, and containers see them through their own root.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::GuestError;
use crate::host::{FileTree, NodeKind, OpenMode, TreeDir, TreeFile};

/// Where CopyFile writes (Kata's `KATA_GUEST_SHARE_DIR`).
pub const SHARED_DIR: &str = "/run/kata-containers/shared/containers";

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
/// Permission bits kept from `file_mode`: no setuid, no setgid; the sticky bit stays.
const KEPT_BITS: u32 = 0o1777;
/// Permission bits of directories created on the way (`dir_mode`).
const IMPLICIT_DIR_BITS: u32 = 0o777;
/// The longest name a Linux filesystem takes (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// A CopyFile request, fields as on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyFileRequest {
    /// The absolute target path, beneath [`SHARED_DIR`].
    pub path: String,
    /// The size of the whole file.
    pub file_size: i64,
    /// `st_mode`: file type and permission bits.
    pub file_mode: u32,
    /// Permission bits of parent directories created on the way.
    pub dir_mode: u32,
    /// Owner.
    pub uid: i32,
    /// Group.
    pub gid: i32,
    /// Where this chunk goes in the file.
    pub offset: i64,
    /// The chunk (a symbolic link's target for links).
    pub data: Vec<u8>,
}

/// What the request creates.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    File { size: u64, offset: u64 },
    Dir,
    Symlink(PathBuf),
}

/// A validated request: where, what, and with which attributes.
#[derive(Debug)]
struct Plan {
    parent: PathBuf,
    name: OsString,
    kind: Kind,
    mode: u32,
    dir_mode: u32,
    uid: u32,
    gid: u32,
}

/// What one CopyFile did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyOutcome {
    /// A chunk was stored; the file is not complete yet.
    Partial,
    /// The file, directory or link is in place.
    Done,
}

/// Applies one CopyFile request beneath [`SHARED_DIR`].
pub fn copy_file(files: &dyn FileTree, req: &CopyFileRequest) -> Result<CopyOutcome, GuestError> {
    let plan = plan(req)?;
    let refused = |e: io::Error| refusal(&req.path, e);
    let root = files
        .open_base(Path::new(SHARED_DIR))
        .map_err(GuestError::io(format!("open {SHARED_DIR}")))?;
    let parent = root
        .walk(&plan.parent, Some(plan.dir_mode))
        .map_err(refused)?;
    if !plan.parent.as_os_str().is_empty() {
        // As Kata: the immediate parent belongs to the file's owner.
        parent
            .set_attrs(plan.uid, plan.gid, None)
            .map_err(GuestError::io("chown the parent directory"))?;
    }
    match &plan.kind {
        Kind::Dir => make_dir(&*parent, &plan).map_err(refused)?,
        Kind::Symlink(target) => make_symlink(&*parent, &plan, target).map_err(refused)?,
        Kind::File { size, offset } => {
            return write_chunk(&*parent, &plan, *size, *offset, &req.data).map_err(refused);
        }
    }
    Ok(CopyOutcome::Done)
}

/// A resolution error is a refusal of the path; other OS errors stay OS errors.
fn refusal(path: &str, e: io::Error) -> GuestError {
    use nix::errno::Errno;
    let refused = e.kind() == io::ErrorKind::InvalidInput
        || matches!(
            e.raw_os_error().map(Errno::from_raw),
            Some(Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR | Errno::EISDIR)
        );
    if refused {
        let reason = match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ELOOP) => "a symbolic link is in the way".to_owned(),
            Some(Errno::EXDEV) => format!("it leads outside {SHARED_DIR}"),
            Some(Errno::ENOTDIR) => "a parent is not a directory".to_owned(),
            Some(Errno::EISDIR) => "a directory is in the way".to_owned(),
            _ => e.to_string(),
        };
        GuestError::Refused {
            path: path.to_owned(),
            reason,
        }
    } else {
        GuestError::Io {
            op: format!("copy {path}"),
            source: e,
        }
    }
}

/// Checks every field; nothing is touched before this succeeds.
fn plan(req: &CopyFileRequest) -> Result<Plan, GuestError> {
    let (parent, name) = split_path(&req.path)?;
    let uid = u32::try_from(req.uid).map_err(|_| GuestError::invalid("uid", "negative"))?;
    let gid = u32::try_from(req.gid).map_err(|_| GuestError::invalid("gid", "negative"))?;
    let kind = match req.file_mode & S_IFMT {
        S_IFDIR => Kind::Dir,
        S_IFLNK => Kind::Symlink(link_target(&req.data)?),
        S_IFREG | 0 => file_kind(req)?,
        other => {
            return Err(GuestError::invalid(
                "file_mode",
                format!("file type {other:#o} is not a file, directory or symbolic link"),
            ));
        }
    };
    if req.file_mode & 0o6000 != 0 {
        tracing::warn!(path = %req.path, mode = format!("{:o}", req.file_mode), "dropping set-id bits");
    }
    Ok(Plan {
        parent,
        name,
        kind,
        mode: req.file_mode & KEPT_BITS,
        dir_mode: req.dir_mode & IMPLICIT_DIR_BITS,
        uid,
        gid,
    })
}

/// `path` relative to [`SHARED_DIR`]: its parent and its last name.
fn split_path(path: &str) -> Result<(PathBuf, OsString), GuestError> {
    let bad = |reason: String| GuestError::invalid("path", format!("{path:?}: {reason}"));
    if path.contains('\0') {
        return Err(bad("contains a NUL byte".into()));
    }
    let rel = Path::new(path)
        .strip_prefix(SHARED_DIR)
        .map_err(|_| bad(format!("not beneath {SHARED_DIR}")))?;
    let mut parts = Vec::new();
    for part in rel.components() {
        match part {
            Component::Normal(name) if name.len() > NAME_MAX => {
                return Err(bad(format!("a name is longer than {NAME_MAX} bytes")));
            }
            Component::Normal(name) => parts.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("`..` is not allowed".into())),
            Component::RootDir | Component::Prefix(_) => return Err(bad("not relative".into())),
        }
    }
    let name = parts
        .pop()
        .ok_or_else(|| bad(format!("names {SHARED_DIR} itself")))?;
    Ok((parts.iter().collect(), name.to_owned()))
}

fn link_target(data: &[u8]) -> Result<PathBuf, GuestError> {
    use std::os::unix::ffi::OsStrExt;
    if data.is_empty() || data.contains(&0) {
        return Err(GuestError::invalid(
            "data",
            "a symbolic link's target must be non-empty and free of NUL bytes",
        ));
    }
    Ok(PathBuf::from(OsStr::from_bytes(data)))
}

fn file_kind(req: &CopyFileRequest) -> Result<Kind, GuestError> {
    let size = u64::try_from(req.file_size)
        .map_err(|_| GuestError::invalid("file_size", format!("{} is negative", req.file_size)))?;
    let offset = u64::try_from(req.offset)
        .map_err(|_| GuestError::invalid("offset", format!("{} is negative", req.offset)))?;
    if offset > size {
        return Err(GuestError::invalid(
            "offset",
            format!("{offset} is past file_size {size}"),
        ));
    }
    let end = offset.saturating_add(req.data.len() as u64);
    if end > size {
        return Err(GuestError::invalid(
            "data",
            format!(
                "{} bytes at offset {offset} end at {end}, past file_size {size}",
                req.data.len()
            ),
        ));
    }
    Ok(Kind::File { size, offset })
}

/// The temporary name of `name` while its chunks arrive: hidden, of bounded length, one per
/// target name.
fn temp_name(name: &OsStr) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = name
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    OsString::from(format!(".kata-copy-{hash:016x}.tmp"))
}

fn write_chunk(
    parent: &dyn TreeDir,
    plan: &Plan,
    size: u64,
    offset: u64,
    data: &[u8],
) -> io::Result<CopyOutcome> {
    // The rename at the end replaces a file or a link (never following it); anything else
    // at the target is refused.
    match parent.kind_of(&plan.name)? {
        None | Some(NodeKind::File | NodeKind::Symlink) => {}
        Some(NodeKind::Dir) => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Some(other) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {other:?} is at the target"),
            ));
        }
    }
    let temp = temp_name(&plan.name);
    let mode = OpenMode::Write {
        mode: plan.mode,
        truncate: offset == 0,
    };
    let file = parent.open_file(&temp, mode)?;
    let result = fill(&*file, parent, plan, &temp, size, offset, data);
    if result.is_err() {
        // No partial file stays behind; a later chunk at offset 0 starts over.
        if let Err(e) = parent.remove(&temp) {
            tracing::warn!(error = %e, "cannot remove the temporary file of a failed copy");
        }
    }
    result
}

fn fill(
    file: &dyn TreeFile,
    parent: &dyn TreeDir,
    plan: &Plan,
    temp: &OsStr,
    size: u64,
    offset: u64,
    data: &[u8],
) -> io::Result<CopyOutcome> {
    file.write_at(offset, data)?;
    let written = file.size()?;
    if written < size {
        return Ok(CopyOutcome::Partial);
    }
    if written > size {
        return Err(io::Error::other(format!(
            "the temporary file holds {written} bytes, more than file_size {size}"
        )));
    }
    file.set_attrs(plan.uid, plan.gid, plan.mode)?;
    parent.rename(temp, &plan.name)?;
    Ok(CopyOutcome::Done)
}

fn make_dir(parent: &dyn TreeDir, plan: &Plan) -> io::Result<()> {
    match parent.kind_of(&plan.name)? {
        Some(NodeKind::Dir) | None => {}
        // A file or link where the directory goes is replaced, as Kata does.
        Some(_) => parent.remove(&plan.name)?,
    }
    let dir = parent.walk(Path::new(&plan.name), Some(plan.mode & IMPLICIT_DIR_BITS))?;
    dir.set_attrs(plan.uid, plan.gid, Some(plan.mode))
}

fn make_symlink(parent: &dyn TreeDir, plan: &Plan, target: &Path) -> io::Result<()> {
    match parent.kind_of(&plan.name)? {
        None => {}
        Some(NodeKind::Dir) => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Some(_) => parent.remove(&plan.name)?,
    }
    parent.symlink(&plan.name, target, plan.uid, plan.gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> CopyFileRequest {
        CopyFileRequest {
            path: path.into(),
            file_size: 4,
            file_mode: S_IFREG | 0o644,
            dir_mode: 0o755,
            data: b"abcd".to_vec(),
            ..CopyFileRequest::default()
        }
    }

    fn field(r: &CopyFileRequest) -> &'static str {
        match plan(r).unwrap_err() {
            GuestError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn paths_must_stay_beneath_the_shared_directory() {
        let ok = plan(&req(&format!("{SHARED_DIR}/c1/etc/hosts"))).unwrap();
        assert_eq!(ok.parent, Path::new("c1/etc"));
        assert_eq!(ok.name, "hosts");
        for bad in [
            format!("{SHARED_DIR}/../x"),
            format!("{SHARED_DIR}/a/../../x"),
            "/etc/passwd".into(),
            format!("{SHARED_DIR}-other/x"),
            SHARED_DIR.into(),
            format!("{SHARED_DIR}/"),
            "relative/path".into(),
            format!("{SHARED_DIR}/a\0b"),
            format!("{SHARED_DIR}/{}", "n".repeat(256)),
        ] {
            assert_eq!(field(&req(&bad)), "path", "{bad:?}");
        }
    }

    #[test]
    fn sizes_offsets_and_ids_are_checked() {
        let base = req(&format!("{SHARED_DIR}/f"));
        let with = |f: &dyn Fn(&mut CopyFileRequest)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        assert_eq!(field(&with(&|r| r.offset = 5)), "offset");
        assert_eq!(field(&with(&|r| r.offset = -1)), "offset");
        assert_eq!(field(&with(&|r| r.offset = 1)), "data");
        assert_eq!(field(&with(&|r| r.file_size = -1)), "file_size");
        assert_eq!(field(&with(&|r| r.uid = -1)), "uid");
        assert_eq!(field(&with(&|r| r.gid = -5)), "gid");
        assert_eq!(field(&with(&|r| r.file_mode = 0o010_644)), "file_mode");
        let link = with(&|r| {
            r.file_mode = S_IFLNK | 0o777;
            r.data.clear();
        });
        assert_eq!(field(&link), "data");
    }

    #[test]
    fn set_id_bits_are_dropped_and_the_sticky_bit_kept() {
        let mut r = req(&format!("{SHARED_DIR}/f"));
        r.file_mode = S_IFREG | 0o7755;
        r.dir_mode = 0o2775;
        let p = plan(&r).unwrap();
        assert_eq!(p.mode, 0o1755);
        assert_eq!(p.dir_mode, 0o775);
    }

    #[test]
    fn temporary_names_are_hidden_bounded_and_distinct() {
        let a = temp_name(OsStr::new("a.json"));
        let b = temp_name(OsStr::new("a.yaml"));
        assert_ne!(a, b);
        assert!(a.to_str().unwrap().starts_with(".kata-copy-"));
        assert_eq!(temp_name(OsStr::new(&"x".repeat(255))).len(), a.len());
        assert_eq!(temp_name(OsStr::new("a.json")), a);
    }
}
