//! [`StorageRequest`]: one storage of CreateSandbox or CreateContainer, as the drivers take it.

use std::path::{Component, Path, PathBuf};

use super::error::StorageError;

/// When the fsGroup ownership of a volume is changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsGroupPolicy {
    /// Always walk the volume and change ownership and permissions.
    #[default]
    Always,
    /// Only when the volume root does not already have the group and permissions.
    OnRootMismatch,
}

/// Kubernetes' fsGroup of a volume: files get this group and group permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsGroup {
    /// The group id.
    pub gid: u32,
    /// When to apply it.
    pub policy: FsGroupPolicy,
}

/// One storage to set up: what Kata's `Storage` message says, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageRequest {
    /// Kata's driver string (`blk`, `virtio-fs`, `ephemeral`, `local`, ...).
    pub driver: String,
    /// Driver-specific options (`io.katacontainers.volume.overlayfs.create_directory=/x`).
    pub driver_options: Vec<String>,
    /// What to mount: a device, a PCI path, a tag, a directory.
    pub source: String,
    /// Filesystem type.
    pub fstype: String,
    /// Mount options: flags (`ro`, `nosuid`) and filesystem data (`size=64m`).
    pub options: Vec<String>,
    /// Where the storage appears in the guest; the key of the refcount table.
    pub mount_point: PathBuf,
    /// Ownership to apply after mounting.
    pub fs_group: Option<FsGroup>,
    /// Kept until the sandbox goes, even when no container uses it.
    pub shared: bool,
}

impl StorageRequest {
    /// A request for `driver` mounting `source` of type `fstype` on `mount_point`.
    pub fn new(driver: &str, source: &str, fstype: &str, mount_point: impl Into<PathBuf>) -> Self {
        StorageRequest {
            driver: driver.to_owned(),
            source: source.to_owned(),
            fstype: fstype.to_owned(),
            mount_point: mount_point.into(),
            ..StorageRequest::default()
        }
    }

    /// Adds mount options.
    pub fn options<S: Into<String>>(mut self, options: impl IntoIterator<Item = S>) -> Self {
        self.options.extend(options.into_iter().map(Into::into));
        self
    }

    /// Adds driver options.
    pub fn driver_options<S: Into<String>>(mut self, options: impl IntoIterator<Item = S>) -> Self {
        self.driver_options
            .extend(options.into_iter().map(Into::into));
        self
    }

    /// Sets the fsGroup.
    pub fn fs_group(mut self, gid: u32, policy: FsGroupPolicy) -> Self {
        self.fs_group = Some(FsGroup { gid, policy });
        self
    }

    /// Marks the storage shared (kept until the sandbox goes).
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Checks what every driver needs: a known-good absolute mount point.
    pub(crate) fn validate(&self) -> Result<(), StorageError> {
        check_absolute("mount_point", &self.mount_point)
    }

    /// The value of the `key=value` entry of `list`, if present (the last one wins).
    pub(crate) fn find<'a>(list: &'a [String], key: &str) -> Option<&'a str> {
        list.iter()
            .flat_map(|o| o.split(','))
            .filter_map(|o| o.strip_prefix(key)?.strip_prefix('='))
            .next_back()
    }

    /// Whether `list` holds the bare word `word` (in any comma-separated entry).
    pub(crate) fn has(list: &[String], word: &str) -> bool {
        list.iter().flat_map(|o| o.split(',')).any(|o| o == word)
    }

    /// `list` without the `key=...` entries and bare `word`s in `drop` (comma-joined entries
    /// are split).
    pub(crate) fn without(list: &[String], drop: &[&str]) -> Vec<String> {
        list.iter()
            .flat_map(|o| o.split(','))
            .filter(|o| {
                !drop
                    .iter()
                    .any(|d| *o == *d || o.strip_prefix(d).is_some_and(|r| r.starts_with('=')))
            })
            .map(str::to_owned)
            .collect()
    }
}

/// Checks that `path` is absolute and has no `..` (and is not `/` itself).
pub(crate) fn check_absolute(field: &'static str, path: &Path) -> Result<(), StorageError> {
    if !path.is_absolute() {
        return Err(StorageError::request(
            field,
            format!("{} is not an absolute path", path.display()),
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(StorageError::request(
            field,
            format!("{} contains `..`", path.display()),
        ));
    }
    if path.parent().is_none() {
        return Err(StorageError::request(field, "`/` cannot be a storage"));
    }
    Ok(())
}
