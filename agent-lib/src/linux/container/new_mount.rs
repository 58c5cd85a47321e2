//! Mounts made detached and then attached onto a target's descriptor (the new mount API:
//! `open_tree`, `fsopen`/`fsconfig`/`fsmount`, `move_mount(MOVE_MOUNT_T_EMPTY_PATH)`), so no path
//! inside the rootfs is looked up again. The returned descriptor names the new mount's root,
//! for the remounts and propagation changes that follow (through [`super::in_root::fd_path`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::mount::MsFlags;

use super::error::{Result, SetupError, Step};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn cstr(s: &str, shown: &str) -> Result<CString> {
    CString::new(s).map_err(|_| SetupError::spec(format!("NUL in an option of {shown}")))
}

fn fd_or_error(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

/// A detached copy of the mount (or, with `recursive`, mount tree) at the file `source`, a
/// descriptor resolved once by the caller: no path is looked up again.
pub(super) fn clone_tree(source: BorrowedFd<'_>, shown: &str, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | (libc::O_CLOEXEC | libc::AT_EMPTY_PATH) as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree reads the empty path string only.
    let ret =
        unsafe { libc::syscall(libc::SYS_open_tree, source.as_raw_fd(), c"".as_ptr(), flags) };
    fd_or_error(ret).step(|| format!("open the bind source of {shown}"))
}

/// Sets the mount `flags` (read-only, nosuid, nodev, noexec, atime) on the detached mount
/// `tree`, and with `recursive` on every mount below it (`mount_setattr`, Linux ≥ 5.12);
/// other attributes are kept.
pub(super) fn set_flags(
    tree: BorrowedFd<'_>,
    flags: MsFlags,
    recursive: bool,
    shown: &str,
) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    /// `MOUNT_ATTR__ATIME`: the atime field, cleared before one of its values is set.
    const ATIME_MASK: u64 = 0x70;
    let attr_set = u64::from(attributes(flags));
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME | MsFlags::MS_RELATIME;
    let attr_clr = if flags.intersects(atime) {
        ATIME_MASK
    } else {
        0
    };
    if attr_set == 0 && attr_clr == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    let mut at = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        at |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr reads `attr` (of the size given) and the empty path string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error()).step(|| format!("set the flags of {shown}"));
    }
    Ok(())
}

/// A new, detached filesystem of type `typ` from `source`, with the filesystem options `data`
/// (`key=value` or `key`) and the mount `flags`.
pub(super) fn new_fs(
    typ: &str,
    source: &str,
    data: &[String],
    flags: MsFlags,
    shown: &str,
) -> Result<OwnedFd> {
    let name = cstr(typ, shown)?;
    // SAFETY: fsopen reads the type string only.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    let ctx = fd_or_error(ret).step(|| format!("mount {typ} on {shown}"))?;
    let set = |cmd: libc::c_uint, key: &str, value: Option<&str>| -> Result<()> {
        let k = cstr(key, shown)?;
        let v = value.map(|v| cstr(v, shown)).transpose()?;
        let vp = v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: fsconfig reads the key and value strings only.
        let ret =
            unsafe { libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), cmd, k.as_ptr(), vp, 0) };
        if ret < 0 {
            return Err(io::Error::last_os_error())
                .step(|| format!("set {key} on the {typ} filesystem of {shown}"));
        }
        Ok(())
    };
    set(FSCONFIG_SET_STRING, "source", Some(source))?;
    for opt in data {
        match split_option(opt) {
            (k, Some(v)) => set(FSCONFIG_SET_STRING, k, Some(v))?,
            (k, None) => set(FSCONFIG_SET_FLAG, k, None)?,
        }
    }
    for (ms, key) in [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_SYNCHRONOUS, "sync"),
        (MsFlags::MS_DIRSYNC, "dirsync"),
        (MsFlags::MS_MANDLOCK, "mand"),
    ] {
        if flags.contains(ms) {
            set(FSCONFIG_SET_FLAG, key, None)?;
        }
    }
    // SAFETY: no pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error()).step(|| format!("create the {typ} of {shown}"));
    }
    // SAFETY: no pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attributes(flags),
        )
    };
    fd_or_error(ret).step(|| format!("mount the {typ} of {shown}"))
}

/// `key=value` (one pair of double quotes around the value dropped, as mount(2)'s option
/// parser does for `context="a:b:c,d"`) or a bare `key`.
fn split_option(opt: &str) -> (&str, Option<&str>) {
    match opt.split_once('=') {
        Some((k, v)) => {
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k, Some(unquoted))
        }
        None => (opt, None),
    }
}

/// The `MOUNT_ATTR_*` of mount flags.
fn attributes(flags: MsFlags) -> libc::c_uint {
    let table = [
        (MsFlags::MS_RDONLY, 0x01),
        (MsFlags::MS_NOSUID, 0x02),
        (MsFlags::MS_NODEV, 0x04),
        (MsFlags::MS_NOEXEC, 0x08),
        (MsFlags::MS_NOATIME, 0x10),
        (MsFlags::MS_STRICTATIME, 0x20),
        (MsFlags::MS_NODIRATIME, 0x80),
    ];
    table
        .iter()
        .filter(|(ms, _)| flags.contains(*ms))
        .fold(0, |acc, (_, attr)| acc | attr)
}

/// Attaches the detached mount `tree` onto the file `target` (a descriptor, no path).
pub(super) fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>, shown: &str) -> Result<()> {
    let empty = c"";
    // SAFETY: move_mount reads the two empty path strings only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error()).step(|| format!("attach the mount on {shown}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_as_mount_data_would() {
        assert_eq!(split_option("mode=755"), ("mode", Some("755")));
        assert_eq!(
            split_option("context=\"system_u:object_r:c:s0:c1,c2\""),
            ("context", Some("system_u:object_r:c:s0:c1,c2"))
        );
        assert_eq!(split_option("a=b=c"), ("a", Some("b=c")));
        assert_eq!(split_option("newinstance"), ("newinstance", None));
        assert_eq!(split_option("x=\""), ("x", Some("\"")));
        assert_eq!(
            attributes(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOATIME),
            0x01 | 0x02 | 0x10
        );
    }
}
