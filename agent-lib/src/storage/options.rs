//! The strict mount option parser: each option is a mount flag (`ro`, `nosuid`, `rbind`...), a
//! filesystem data option (`size=64m`, `dax`) or an error naming it.
//!
//! Options may be comma-joined (`trans=virtio,version=9p2000.L`), as Kata's runtime sends them.
//! Unlike Kata's `parse_mount_options`, which passes anything unknown to the filesystem, an
//! unknown bare word, an fstab-only option, `loop`, an empty option, an unconsumed Kata option
//! (`io.katacontainers.*`, `X-kata.*`), two options that contradict each other (`ro` and `rw`,
//! `private` and `shared`, `size=1m` and `size=2m`) and data longer than a page are rejected.

use nix::mount::MsFlags;

use super::error::StorageError;

/// Propagation flags: applied by a second mount(2) call, after the mount itself.
pub const PROPAGATION: MsFlags = MsFlags::MS_SHARED
    .union(MsFlags::MS_PRIVATE)
    .union(MsFlags::MS_SLAVE)
    .union(MsFlags::MS_UNBINDABLE);

/// The kernel takes at most one page of mount data.
const MAX_DATA: usize = 4096;

/// What an option word does to the flags.
#[derive(Clone, Copy)]
enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
    Nothing,
}

/// Every mount flag word, as mount(8) spells it.
const FLAGS: &[(&str, Effect)] = &[
    ("defaults", Effect::Nothing),
    ("ro", Effect::Set(MsFlags::MS_RDONLY)),
    ("rw", Effect::Clear(MsFlags::MS_RDONLY)),
    ("nosuid", Effect::Set(MsFlags::MS_NOSUID)),
    ("suid", Effect::Clear(MsFlags::MS_NOSUID)),
    ("nodev", Effect::Set(MsFlags::MS_NODEV)),
    ("dev", Effect::Clear(MsFlags::MS_NODEV)),
    ("noexec", Effect::Set(MsFlags::MS_NOEXEC)),
    ("exec", Effect::Clear(MsFlags::MS_NOEXEC)),
    ("sync", Effect::Set(MsFlags::MS_SYNCHRONOUS)),
    ("async", Effect::Clear(MsFlags::MS_SYNCHRONOUS)),
    ("dirsync", Effect::Set(MsFlags::MS_DIRSYNC)),
    ("mand", Effect::Set(MsFlags::MS_MANDLOCK)),
    ("nomand", Effect::Clear(MsFlags::MS_MANDLOCK)),
    ("noatime", Effect::Set(MsFlags::MS_NOATIME)),
    ("atime", Effect::Clear(MsFlags::MS_NOATIME)),
    ("nodiratime", Effect::Set(MsFlags::MS_NODIRATIME)),
    ("diratime", Effect::Clear(MsFlags::MS_NODIRATIME)),
    ("relatime", Effect::Set(MsFlags::MS_RELATIME)),
    ("norelatime", Effect::Clear(MsFlags::MS_RELATIME)),
    ("strictatime", Effect::Set(MsFlags::MS_STRICTATIME)),
    ("nostrictatime", Effect::Clear(MsFlags::MS_STRICTATIME)),
    ("lazytime", Effect::Set(MsFlags::MS_LAZYTIME)),
    ("nolazytime", Effect::Clear(MsFlags::MS_LAZYTIME)),
    ("iversion", Effect::Set(MsFlags::MS_I_VERSION)),
    ("noiversion", Effect::Clear(MsFlags::MS_I_VERSION)),
    ("silent", Effect::Set(MsFlags::MS_SILENT)),
    ("loud", Effect::Clear(MsFlags::MS_SILENT)),
    ("bind", Effect::Set(MsFlags::MS_BIND)),
    (
        "rbind",
        Effect::Set(MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ),
    ("remount", Effect::Set(MsFlags::MS_REMOUNT)),
    ("private", Effect::Set(MsFlags::MS_PRIVATE)),
    (
        "rprivate",
        Effect::Set(MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ),
    ("shared", Effect::Set(MsFlags::MS_SHARED)),
    (
        "rshared",
        Effect::Set(MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ),
    ("slave", Effect::Set(MsFlags::MS_SLAVE)),
    (
        "rslave",
        Effect::Set(MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ),
    ("unbindable", Effect::Set(MsFlags::MS_UNBINDABLE)),
    (
        "runbindable",
        Effect::Set(MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
    ),
];

/// Words that turn a flag on and off: both in one list contradict each other.
const OPPOSITES: &[(&str, &str)] = &[
    ("ro", "rw"),
    ("nosuid", "suid"),
    ("nodev", "dev"),
    ("noexec", "exec"),
    ("sync", "async"),
    ("mand", "nomand"),
    ("noatime", "atime"),
    ("nodiratime", "diratime"),
    ("relatime", "norelatime"),
    ("strictatime", "nostrictatime"),
    ("lazytime", "nolazytime"),
    ("iversion", "noiversion"),
    ("silent", "loud"),
];

/// Groups of which at most one member may appear.
const EXCLUSIVE: &[&[&str]] = &[
    &["noatime", "relatime", "strictatime"],
    &[
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ],
];

/// fstab(5) options that mean nothing to mount(2).
const FSTAB_ONLY: &[&str] = &[
    "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner", "group", "comment",
];

/// Bare (valueless) filesystem data options this agent passes through: DAX (virtio-fs, ext4,
/// xfs, nvdimm), tmpfs, ext4, xfs, overlayfs and 9p words.
const DATA_WORDS: &[&str] = &[
    "dax",
    "noswap",
    "inode32",
    "inode64",
    "acl",
    "noacl",
    "user_xattr",
    "nouser_xattr",
    "discard",
    "nodiscard",
    "barrier",
    "nobarrier",
    "noload",
    "norecovery",
    "nouuid",
    "usrquota",
    "grpquota",
    "prjquota",
    "quota",
    "noquota",
    "userxattr",
    "volatile",
    "posixacl",
];

/// Prefixes of Kata's own options, which drivers consume before mounting.
const KATA_PREFIXES: &[&str] = &["io.katacontainers.", "X-kata."];

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: Vec::new(),
        }
    }
}

/// Parsed mount options: the flags and data of one mount(2) call, and the propagation to set
/// after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags for the mount itself (no propagation flags).
    pub flags: MsFlags,
    /// Propagation flags (`MS_PRIVATE`...) plus `MS_REC` when recursive; empty when none.
    pub propagation: MsFlags,
    /// Filesystem data options, in order.
    pub data: Vec<String>,
}

impl MountOptions {
    /// Parses storage options. `remount` is refused: a storage is a new mount.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<Self, StorageError> {
        Self::parse_inner(options, false)
    }

    /// Parses the options of a remount (UpdateEphemeralMounts): `remount` is allowed.
    pub fn parse_remount<S: AsRef<str>>(options: &[S]) -> Result<Self, StorageError> {
        Self::parse_inner(options, true)
    }

    /// The data as mount(2) takes it, `None` when empty.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// Whether the mount is read-only.
    pub fn read_only(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }

    fn parse_inner<S: AsRef<str>>(
        options: &[S],
        allow_remount: bool,
    ) -> Result<Self, StorageError> {
        let words: Vec<&str> = options
            .iter()
            .flat_map(|o| o.as_ref().split(','))
            .map(str::trim)
            .collect();
        let mut parsed = MountOptions::default();
        let mut all_flags = MsFlags::empty();
        let mut seen_keys: Vec<(&str, &str)> = Vec::new();
        for &word in &words {
            if word.is_empty() {
                return Err(StorageError::option(word, "empty option"));
            }
            if let Some((_, effect)) = FLAGS.iter().find(|(name, _)| *name == word) {
                if word == "remount" && !allow_remount {
                    return Err(StorageError::option(
                        word,
                        "a storage is a new mount; remount is only for UpdateEphemeralMounts",
                    ));
                }
                match *effect {
                    Effect::Set(f) => all_flags |= f,
                    Effect::Clear(f) => all_flags &= !f,
                    Effect::Nothing => {}
                }
                continue;
            }
            check_data_word(word)?;
            if let Some((key, value)) = word.split_once('=') {
                if key.is_empty() {
                    return Err(StorageError::option(word, "empty option name"));
                }
                match seen_keys.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) if *v != value => {
                        return Err(StorageError::option(
                            word,
                            format!("contradicts {key}={v} given earlier"),
                        ));
                    }
                    Some(_) => continue,
                    None => seen_keys.push((key, value)),
                }
            } else if parsed.data.iter().any(|d| d == word) {
                continue;
            }
            parsed.data.push(word.to_owned());
        }
        check_contradictions(&words)?;
        parsed.propagation = all_flags & (PROPAGATION | MsFlags::MS_REC);
        if !all_flags.intersects(PROPAGATION) {
            parsed.propagation = MsFlags::empty();
        }
        parsed.flags = all_flags - PROPAGATION;
        if !parsed.flags.contains(MsFlags::MS_BIND) {
            // MS_REC only means something for bind mounts and propagation.
            parsed.flags -= MsFlags::MS_REC;
        }
        if let Some(data) = parsed.data_string()
            && data.len() > MAX_DATA
        {
            return Err(StorageError::option(
                format!("{}...", &data[..32]),
                format!("mount data is {} bytes, more than {MAX_DATA}", data.len()),
            ));
        }
        Ok(parsed)
    }
}

fn check_data_word(word: &str) -> Result<(), StorageError> {
    if word == "loop" {
        return Err(StorageError::option(word, "loop devices are not supported"));
    }
    if FSTAB_ONLY.contains(&word) {
        return Err(StorageError::option(
            word,
            "an fstab-only option, not a mount option",
        ));
    }
    if KATA_PREFIXES.iter().any(|p| word.starts_with(p)) {
        return Err(StorageError::option(
            word,
            "a Kata option this driver does not handle",
        ));
    }
    if !word.contains('=') && !DATA_WORDS.contains(&word) {
        return Err(StorageError::option(word, "unknown mount option"));
    }
    Ok(())
}

fn check_contradictions(words: &[&str]) -> Result<(), StorageError> {
    for (a, b) in OPPOSITES {
        if words.contains(a) && words.contains(b) {
            return Err(StorageError::option(*b, format!("contradicts {a}")));
        }
    }
    for group in EXCLUSIVE {
        let present: Vec<&&str> = group.iter().filter(|w| words.contains(w)).collect();
        if let [first, second, ..] = present.as_slice() {
            return Err(StorageError::option(
                **second,
                format!("contradicts {first}"),
            ));
        }
    }
    Ok(())
}
