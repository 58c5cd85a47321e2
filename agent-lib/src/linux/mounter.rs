//! [`LinuxMounter`]: the [`Mounter`] seam on mount(2), umount2(2) and `/proc/.../mountinfo`.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::mount::MntFlags;

use crate::host::{MountEntry, MountSpec, Mounter, ShareMount};

/// Mount table of the calling thread's mount namespace (Linux 3.17+).
const THREAD_MOUNTINFO: &str = "/proc/thread-self/mountinfo";
/// Fallback for kernels without `/proc/thread-self`.
const SELF_MOUNTINFO: &str = "/proc/self/mountinfo";

/// The real [`Mounter`]: mount(2) and umount2(2) in the caller's mount namespace.
///
/// The mount table is read from `/proc/thread-self/mountinfo`, so it describes the namespace of
/// the calling thread (which is what mount(2) acts on), even when that differs from the main
/// thread's.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxMounter;

impl LinuxMounter {
    /// A mounter for the caller's mount namespace.
    pub fn new() -> Self {
        LinuxMounter
    }
}

impl Mounter for LinuxMounter {
    fn mount(&self, spec: &MountSpec) -> io::Result<()> {
        tracing::debug!(
            source = ?spec.source,
            target = %spec.target.display(),
            fstype = ?spec.fstype,
            flags = ?spec.flags,
            data = ?spec.data,
            "mount"
        );
        nix::mount::mount(
            spec.source.as_deref(),
            &spec.target,
            spec.fstype.as_deref(),
            spec.flags,
            spec.data.as_deref(),
        )
        .map_err(|errno| {
            tracing::debug!(target = %spec.target.display(), %errno, "mount failed");
            io::Error::from(errno)
        })
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        tracing::debug!(target = %target.display(), ?flags, "umount");
        nix::mount::umount2(target, flags).map_err(io::Error::from)
    }

    fn mounts(&self) -> io::Result<Vec<MountEntry>> {
        let text = match std::fs::read(THREAD_MOUNTINFO) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::read(SELF_MOUNTINFO)?,
            Err(e) => return Err(e),
        };
        Ok(parse_mountinfo(&text))
    }

    fn share_mount(&self, share: &ShareMount) -> io::Result<()> {
        tracing::debug!(?share, "share a mount between containers");
        super::shared_mount::share_mount(share)
    }
}

/// Parses the text of a `mountinfo` file (proc(5)). Malformed lines are logged and skipped.
pub(crate) fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    text.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let entry = parse_mountinfo_line(line);
            if entry.is_none() {
                tracing::warn!(line = %String::from_utf8_lossy(line), "malformed mountinfo line");
            }
            entry
        })
        .collect()
}

/// One line: `ID PARENT MAJ:MIN ROOT MOUNTPOINT MOUNTOPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`.
fn parse_mountinfo_line(line: &[u8]) -> Option<MountEntry> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let sep = fields.iter().position(|f| *f == b"-")?;
    if sep < 6 {
        return None;
    }
    let target = fields[4];
    let mount_opts = fields[5];
    let fstype = fields.get(sep + 1)?;
    let source = fields.get(sep + 2)?;
    let super_opts = fields.get(sep + 3).copied().unwrap_or_default();
    Some(MountEntry {
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
        target: PathBuf::from(OsString::from_vec(unescape(target))),
        fstype: String::from_utf8_lossy(&unescape(fstype)).into_owned(),
        options: merge_options(
            &String::from_utf8_lossy(&unescape(mount_opts)),
            &String::from_utf8_lossy(&unescape(super_opts)),
        ),
    })
}

/// Decodes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
/// A backslash not followed by three octal digits is kept as is.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(digits) = field.get(i + 1..i + 4)
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Per-mount options followed by the superblock's, as `/proc/mounts` shows them: the
/// superblock's `rw`/`ro` and anything already listed are dropped.
fn merge_options(mount_opts: &str, super_opts: &str) -> String {
    let mut merged: Vec<&str> = mount_opts.split(',').filter(|o| !o.is_empty()).collect();
    for opt in super_opts.split(',') {
        if opt.is_empty() || opt == "rw" || opt == "ro" || merged.contains(&opt) {
            continue;
        }
        merged.push(opt);
    }
    merged.join(",")
}

#[cfg(test)]
#[path = "mounter_tests.rs"]
mod tests;
