//! The spec's mounts, done under the new root before the pivot: bind (files and directories),
//! proc, sysfs, tmpfs, mqueue, devpts, cgroup ([`super::cgroup_mount`]), and anything else by type; mount options to
//! flags, propagation and data; read-only bind mounts done as bind + remount.

use std::fs;
use std::io;
use std::path::Path;

use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Mount;

use super::error::{Result, SetupError, Step};
use super::paths::{create_dirs, create_file, remount_readonly, secure_join};

/// A mount's options, split into what `mount(2)` takes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Options {
    /// Flags for the mount itself.
    pub(super) flags: MsFlags,
    /// A propagation change applied after the mount (`rprivate`, `shared`...).
    pub(super) propagation: MsFlags,
    /// Filesystem-specific options, joined with commas for the data argument.
    pub(super) data: Vec<String>,
}

impl Options {
    fn bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Splits OCI mount options into flags, propagation and data.
pub(super) fn parse_options(options: &[String]) -> Options {
    let mut out = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
    };
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            other => {
                let propagation = match other {
                    "private" => MsFlags::MS_PRIVATE,
                    "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                    "shared" => MsFlags::MS_SHARED,
                    "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
                    "slave" => MsFlags::MS_SLAVE,
                    "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    "unbindable" => MsFlags::MS_UNBINDABLE,
                    "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
                    _ => {
                        out.data.push(other.to_owned());
                        continue;
                    }
                };
                out.propagation = propagation;
                continue;
            }
        };
        out.flags = (out.flags | set) & !clear;
    }
    out
}

/// Does every mount of the spec under `rootfs` (still the agent's view of it, before the pivot);
/// `cgroup` is the container's cgroup, for a `cgroup` mount.
pub(super) fn mount_all(rootfs: &Path, mounts: &[Mount], cgroup: &Path) -> Result<()> {
    for m in mounts {
        mount_one(rootfs, m, cgroup)?;
    }
    Ok(())
}

fn mount_one(rootfs: &Path, m: &Mount, cgroup: &Path) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let dest = secure_join(rootfs, m.destination())?;
    let shown = m.destination().display().to_string();
    if opts.bind() || typ == "bind" {
        bind(m, &opts, &dest, &shown)?;
    } else if typ == "cgroup" {
        super::cgroup_mount::mount_cgroup(&dest, &shown, opts.flags, cgroup)?;
    } else {
        create_dirs(&dest).step(|| format!("create mount point {shown}"))?;
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_owned());
        let data = opts.data.join(",");
        mount(
            Some(source.as_str()),
            &dest,
            Some(typ),
            opts.flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .step(|| format!("mount {typ} on {shown}"))?;
    }
    if !opts.propagation.is_empty() {
        mount(
            None::<&str>,
            &dest,
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )
        .step(|| format!("set the propagation of {shown}"))?;
    }
    Ok(())
}

fn bind(m: &Mount, opts: &Options, dest: &Path, shown: &str) -> Result<()> {
    let source = m
        .source()
        .as_ref()
        .ok_or_else(|| SetupError::spec(format!("bind mount on {shown} has no source")))?;
    let meta = fs::metadata(source).step(|| format!("bind source {}", source.display()))?;
    if meta.is_dir() {
        create_dirs(dest).step(|| format!("create mount point {shown}"))?;
    } else if fs::symlink_metadata(dest).is_err() {
        if let Some(parent) = dest.parent() {
            create_dirs(parent).step(|| format!("create the parent of {shown}"))?;
        }
        create_file(dest).step(|| format!("create mount point {shown}"))?;
    }
    let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(Some(source), dest, None::<&str>, flags, None::<&str>)
        .step(|| format!("bind {} on {shown}", source.display()))?;
    // A bind mount ignores every other flag: they take a remount.
    let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        remount_readonly(dest, true, extra)?;
        if opts.flags.contains(MsFlags::MS_REC) {
            readonly_below(dest, shown)?;
        }
    } else if !extra.is_empty() {
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra,
            None::<&str>,
        )
        .step(|| format!("remount {shown} with its flags"))?;
    }
    Ok(())
}

/// Makes every mount below `dest` read-only too (`mount_setattr(AT_RECURSIVE)`, Linux ≥ 5.12).
fn readonly_below(dest: &Path, shown: &str) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let path = std::ffi::CString::new(dest.as_os_str().as_encoded_bytes())
        .map_err(|_| SetupError::spec(format!("NUL in mount point {shown}")))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `attr` (of the size given) and the path string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error())
            .step(|| format!("make the mounts under {shown} read-only"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> Options {
        parse_options(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse(&[
            "nosuid",
            "noexec",
            "ro",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        let o = parse(&["rbind", "ro", "rw"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.bind());
    }
}
