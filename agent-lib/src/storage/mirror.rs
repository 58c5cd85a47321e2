//! [`Mirror`]: copies a small directory tree (or one file) without inotify support (virtio-fs,
//! 9p) into a tmpfs and keeps the copy current by polling, for Kubernetes ConfigMaps and
//! Secrets. Kata's limits apply: at most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;

use super::error::StorageError;
use crate::host::{FileMeta, Host, NodeKind};
use crate::undo::{is_errno, remove_tree};

/// Most entries (files, links and directories) one watched storage may hold.
pub const MAX_ENTRIES: usize = 16;
/// Most bytes of files one watched storage may hold.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Why a scan stopped.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The source outgrew the limits: it should be bind-mounted instead.
    TooBig(String),
    /// The source could not be read.
    Failed(StorageError),
}

/// The state of one watched storage: what was copied and when it was last modified.
pub(crate) struct Mirror {
    host: Host,
    source: PathBuf,
    target: PathBuf,
    seen: BTreeMap<PathBuf, SystemTime>,
}

impl Mirror {
    pub(crate) fn new(host: Host, source: PathBuf, target: PathBuf) -> Self {
        Mirror {
            host,
            source,
            target,
            seen: BTreeMap::new(),
        }
    }

    /// Brings the copy up to date: removes what disappeared, copies what is new or newer.
    /// Returns how many entries were copied. A copy that fails is logged and retried on the
    /// next scan.
    pub(crate) fn scan(&mut self) -> Result<usize, ScanError> {
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|p| self.host.sysfs.symlink_metadata(p).is_err())
            .cloned()
            .collect();
        for path in gone {
            self.seen.remove(&path);
            let target = self.target_of(&path);
            if let Err(e) = remove_tree(&self.host, &target) {
                tracing::warn!(error = %e, "removing a deleted watched entry");
            }
        }
        let mut changed = Vec::new();
        let mut stack = vec![self.source.clone()];
        let mut bytes = 0u64;
        while let Some(path) = stack.pop() {
            let meta = self
                .host
                .sysfs
                .symlink_metadata(&path)
                .map_err(|e| ScanError::Failed(StorageError::os("inspect", &path, e)))?;
            if meta.kind == NodeKind::Dir {
                let names = self
                    .host
                    .sysfs
                    .read_dir(&path)
                    .map_err(|e| ScanError::Failed(StorageError::os("list", &path, e)))?;
                stack.extend(names.into_iter().rev().map(|n| path.join(n)));
            } else {
                bytes += meta.size;
            }
            let newer = match self.seen.insert(path.clone(), meta.modified) {
                None => true,
                Some(before) => meta.kind != NodeKind::Dir && meta.modified > before,
            };
            if newer {
                changed.push((path, meta));
            }
            if self.seen.len() > MAX_ENTRIES {
                return Err(ScanError::TooBig(format!(
                    "{} holds more than {MAX_ENTRIES} entries",
                    self.source.display()
                )));
            }
            if bytes > MAX_BYTES {
                return Err(ScanError::TooBig(format!(
                    "{} holds more than {MAX_BYTES} bytes",
                    self.source.display()
                )));
            }
        }
        let count = changed.len();
        for (path, meta) in changed {
            if let Err(e) = self.copy(&path, &meta) {
                tracing::warn!(error = %e, "copying a watched entry");
                // Forget it, so the next scan copies it again.
                self.seen.remove(&path);
            }
        }
        Ok(count)
    }

    fn target_of(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.source) {
            Ok(rest) if rest.as_os_str().is_empty() => self.target.clone(),
            Ok(rest) => self.target.join(rest),
            Err(_) => self.target.clone(),
        }
    }

    /// Copies one entry, with its mode and owner.
    fn copy(&self, path: &Path, meta: &FileMeta) -> Result<(), StorageError> {
        let (sysfs, files) = (&*self.host.sysfs, &*self.host.agent_files);
        let target = self.target_of(path);
        match meta.kind {
            NodeKind::Dir => {
                files
                    .create_dir_all(&target)
                    .map_err(|e| StorageError::os("create directory", &target, e))?;
                files
                    .set_mode(&target, meta.mode)
                    .map_err(|e| StorageError::os("chmod", &target, e))?;
            }
            NodeKind::Symlink => {
                let link = sysfs
                    .read_link(path)
                    .map_err(|e| StorageError::os("read link", path, e))?;
                match files.remove_file(&target) {
                    Err(e) if !is_errno(&e, &[Errno::ENOENT]) => {
                        return Err(StorageError::os("replace link", &target, e));
                    }
                    _ => {}
                }
                files
                    .symlink(&link, &target)
                    .map_err(|e| StorageError::os("create link", &target, e))?;
            }
            _ => {
                let data = sysfs
                    .read(path)
                    .map_err(|e| StorageError::os("read", path, e))?;
                if let Some(parent) = target.parent() {
                    files
                        .create_dir_all(parent)
                        .map_err(|e| StorageError::os("create directory", parent, e))?;
                }
                files
                    .create_file(&target, &data, meta.mode)
                    .map_err(|e| StorageError::os("copy", &target, e))?;
            }
        }
        files
            .chown(&target, Some(meta.uid), Some(meta.gid))
            .map_err(|e| StorageError::os("chown", &target, e))
    }
}
