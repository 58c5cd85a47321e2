//! `FakeSysfs`: an in-memory tree standing in for /sys, /dev and /proc.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kata_agent::host::{AgentFiles, FileMeta, NodeInfo, NodeKind, Sysfs};
use nix::errno::Errno;

use crate::faults::{Faults, Op, errno, lock};

/// How many symbolic links one lookup may follow (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: u32 = 40;

/// Reacts to a write through [`Sysfs::write`]; gets the fake, the written file's path with
/// links resolved, and the data. An error fails the write, which then stores nothing.
pub type WriteHook = Arc<dyn Fn(&FakeSysfs, &Path, &[u8]) -> io::Result<()> + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Device {
        kind: NodeKind,
        major: u64,
        minor: u64,
    },
}

impl Node {
    fn info(&self) -> NodeInfo {
        let (kind, mode, major, minor) = match self {
            Node::Dir => (NodeKind::Dir, 0o755, 0, 0),
            Node::File(_) => (NodeKind::File, 0o644, 0, 0),
            Node::Symlink(_) => (NodeKind::Symlink, 0o777, 0, 0),
            Node::Device { kind, major, minor } => (*kind, 0o660, *major, *minor),
        };
        NodeInfo {
            kind,
            mode,
            major,
            minor,
        }
    }
}

/// Whether a walk creates missing directories.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    Fail,
    CreateDirs,
}

/// Ownership, permissions and modification time of a node, where they differ from the
/// defaults (root-owned, the kind's default mode, never modified).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Attrs {
    mode: Option<u32>,
    uid: u32,
    gid: u32,
    /// Value of [`Tree::clock`] at the last change of contents.
    mtime: u64,
}

#[derive(Debug)]
struct Tree {
    /// Every node by its physical path (no links in it); `/` is always a directory.
    nodes: BTreeMap<PathBuf, Node>,
    /// Attributes of nodes, by physical path.
    attrs: BTreeMap<PathBuf, Attrs>,
    /// Counts content changes: modification times are `UNIX_EPOCH + clock` seconds, so every
    /// change is newer than the one before.
    clock: u64,
}

impl Tree {
    /// Marks `physical` as modified now.
    fn touch(&mut self, physical: &Path) {
        self.clock += 1;
        let clock = self.clock;
        self.attrs.entry(physical.to_owned()).or_default().mtime = clock;
    }

    /// Forgets the attributes of `physical` and everything under it.
    fn forget(&mut self, physical: &Path) {
        self.attrs.retain(|p, _| !p.starts_with(physical));
    }

    /// The metadata of the node at `physical`.
    fn meta(&self, physical: &Path, node: &Node) -> FileMeta {
        let info = node.info();
        let attrs = self.attrs.get(physical).copied().unwrap_or_default();
        let size = match node {
            Node::File(data) => data.len() as u64,
            Node::Symlink(target) => target.as_os_str().len() as u64,
            _ => 0,
        };
        FileMeta {
            kind: info.kind,
            mode: attrs.mode.unwrap_or(info.mode),
            uid: attrs.uid,
            gid: attrs.gid,
            size,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(attrs.mtime),
        }
    }

    /// Resolves `path` (relative paths start at `base`) to a physical path, following links
    /// in every component and, when `follow_last`, in the last one.
    fn walk(
        &mut self,
        base: &Path,
        path: &Path,
        follow_last: bool,
        missing: Missing,
        budget: &mut u32,
    ) -> io::Result<PathBuf> {
        let mut cur = if path.is_absolute() {
            PathBuf::from("/")
        } else {
            base.to_owned()
        };
        let parts: Vec<Component<'_>> = path.components().collect();
        for (i, part) in parts.iter().enumerate() {
            let name = match part {
                Component::Normal(name) => name,
                Component::ParentDir => {
                    cur.pop();
                    continue;
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            };
            match self.nodes.get(&cur) {
                Some(Node::Dir) => {}
                Some(_) => return Err(errno(Errno::ENOTDIR)),
                None => return Err(errno(Errno::ENOENT)),
            }
            let next = cur.join(name);
            let last = i + 1 == parts.len();
            match self.nodes.get(&next) {
                Some(Node::Symlink(target)) if follow_last || !last => {
                    *budget = budget.checked_sub(1).ok_or_else(|| errno(Errno::ELOOP))?;
                    let target = target.clone();
                    cur = self.walk(&cur, &target, true, missing, budget)?;
                }
                Some(_) => cur = next,
                None if missing == Missing::CreateDirs => {
                    self.nodes.insert(next.clone(), Node::Dir);
                    cur = next;
                }
                None => return Err(errno(Errno::ENOENT)),
            }
        }
        Ok(cur)
    }

    fn resolve(&mut self, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
        self.walk(
            Path::new("/"),
            path,
            follow_last,
            Missing::Fail,
            &mut MAX_LINKS.clone(),
        )
    }

    fn node(&mut self, path: &Path, follow_last: bool) -> io::Result<(PathBuf, &Node)> {
        let physical = self.resolve(path, follow_last)?;
        let node = self
            .nodes
            .get(&physical)
            .ok_or_else(|| errno(Errno::ENOENT))?;
        Ok((physical, node))
    }

    /// The physical parent directory of `path` (created when missing) and its last name.
    fn parent_of(&mut self, path: &Path) -> io::Result<(PathBuf, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| errno(Errno::EINVAL))?
            .to_owned();
        let parent = path.parent().unwrap_or(Path::new("/"));
        let dir = self.walk(
            Path::new("/"),
            parent,
            true,
            Missing::CreateDirs,
            &mut MAX_LINKS.clone(),
        )?;
        match self.nodes.get(&dir) {
            Some(Node::Dir) => Ok((dir, name)),
            _ => Err(errno(Errno::ENOTDIR)),
        }
    }

    /// Creates a new node at `path` (`EEXIST` if anything is there, even a dangling link).
    fn create(&mut self, path: &Path, node: Node) -> io::Result<()> {
        let (dir, name) = self.parent_of(path)?;
        let full = dir.join(name);
        if self.nodes.contains_key(&full) {
            return Err(errno(Errno::EEXIST));
        }
        self.nodes.insert(full, node);
        Ok(())
    }

    /// Physical paths directly inside `dir`, sorted.
    fn children<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a PathBuf> + 'a {
        self.nodes
            .range::<Path, _>((Bound::Excluded(dir), Bound::Unbounded))
            .map(|(path, _)| path)
            .take_while(move |path| path.starts_with(dir))
            .filter(move |path| path.parent() == Some(dir))
    }
}

/// An in-memory tree of directories, files, symbolic links and device nodes.
///
/// Lookups follow links like the kernel: relative targets resolve from the link's directory
/// (`/sys/block/vda -> ../devices/pci0000:00/...`), `..` goes to the physical parent, and more
/// than 40 links is `ELOOP`. Through the trait, a missing path is `ENOENT`, a file used as a
/// directory `ENOTDIR`, a directory read or written `EISDIR`, a device node read `EINVAL` (no
/// contents are modelled) and [`Sysfs::read_link`] of a non-link `EINVAL`; writes go to
/// existing files (or device nodes, which keep nothing) and never create one; only
/// [`Sysfs::create_dir_all`] creates (directories). Successful writes are logged
/// ([`FakeSysfs::writes`]) and passed to the hooks registered with [`FakeSysfs::on_write`], so a
/// fake VMM can react to them.
///
/// The builder methods (`mkdir_p`, `write_file`, `symlink`, `mknod`, `remove`) are for the
/// fake VMM: they are not counted as calls, never faulted, never logged and fire no hooks.
pub struct FakeSysfs {
    faults: Faults,
    tree: Mutex<Tree>,
    writes: Mutex<Vec<(PathBuf, Vec<u8>)>>,
    hooks: Mutex<Vec<(PathBuf, WriteHook)>>,
}

impl fmt::Debug for FakeSysfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeSysfs")
            .field("nodes", &lock(&self.tree).nodes.len())
            .field("writes", &lock(&self.writes).len())
            .field("hooks", &lock(&self.hooks).len())
            .finish_non_exhaustive()
    }
}

impl FakeSysfs {
    /// A tree holding only `/`.
    pub fn new(faults: Faults) -> Self {
        FakeSysfs {
            faults,
            tree: Mutex::new(Tree {
                nodes: BTreeMap::from([(PathBuf::from("/"), Node::Dir)]),
                attrs: BTreeMap::new(),
                clock: 0,
            }),
            writes: Mutex::default(),
            hooks: Mutex::default(),
        }
    }

    /// Creates directory `path` and its missing parents (following links on the way).
    pub fn mkdir_p(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let mut tree = lock(&self.tree);
        let dir = tree.walk(
            Path::new("/"),
            path.as_ref(),
            true,
            Missing::CreateDirs,
            &mut MAX_LINKS.clone(),
        )?;
        match tree.nodes.get(&dir) {
            Some(Node::Dir) => Ok(()),
            _ => Err(errno(Errno::EEXIST)),
        }
    }

    /// Creates or replaces file `path` (and missing parents) with `data`; a link at `path` is
    /// followed.
    pub fn write_file(&self, path: impl AsRef<Path>, data: impl Into<Vec<u8>>) -> io::Result<()> {
        let mut tree = lock(&self.tree);
        let (dir, name) = tree.parent_of(path.as_ref())?;
        let mut full = dir.join(name);
        if let Some(Node::Symlink(_)) = tree.nodes.get(&full) {
            full = tree.resolve(&full, true)?;
        }
        match tree.nodes.get(&full) {
            Some(Node::Dir) => Err(errno(Errno::EISDIR)),
            Some(Node::Device { .. }) => Err(errno(Errno::EEXIST)),
            _ => {
                tree.touch(&full);
                tree.nodes.insert(full, Node::File(data.into()));
                Ok(())
            }
        }
    }

    /// Creates a symbolic link at `path` (and missing parents) pointing to `target`, stored as
    /// given (relative targets resolve from the link's directory).
    pub fn symlink(&self, path: impl AsRef<Path>, target: impl Into<PathBuf>) -> io::Result<()> {
        lock(&self.tree).create(path.as_ref(), Node::Symlink(target.into()))
    }

    /// Creates a device node (`kind` is [`NodeKind::BlockDevice`] or [`NodeKind::CharDevice`])
    /// or a fifo ([`NodeKind::Other`], numbers ignored) at `path`, creating missing parents;
    /// another kind is `EINVAL`.
    pub fn mknod(
        &self,
        path: impl AsRef<Path>,
        kind: NodeKind,
        major: u64,
        minor: u64,
    ) -> io::Result<()> {
        if !matches!(
            kind,
            NodeKind::BlockDevice | NodeKind::CharDevice | NodeKind::Other
        ) {
            return Err(errno(Errno::EINVAL));
        }
        lock(&self.tree).create(path.as_ref(), Node::Device { kind, major, minor })
    }

    /// Sets the owner and permission bits (`0o7777`) of `path` itself (a final link is not
    /// followed).
    pub fn set_meta(
        &self,
        path: impl AsRef<Path>,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> io::Result<()> {
        let mut tree = lock(&self.tree);
        let (physical, _) = tree.node(path.as_ref(), false)?;
        let attrs = tree.attrs.entry(physical).or_default();
        attrs.uid = uid;
        attrs.gid = gid;
        attrs.mode = Some(mode & 0o7777);
        Ok(())
    }

    /// Removes `path` and everything under it; a link is removed, not followed.
    pub fn remove(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let mut tree = lock(&self.tree);
        let path = path.as_ref();
        let name = path.file_name().ok_or_else(|| errno(Errno::EINVAL))?;
        let dir = tree.resolve(path.parent().unwrap_or(Path::new("/")), true)?;
        let full = dir.join(name);
        if !tree.nodes.contains_key(&full) {
            return Err(errno(Errno::ENOENT));
        }
        let doomed: Vec<PathBuf> = tree
            .nodes
            .range::<Path, _>((Bound::Included(full.as_path()), Bound::Unbounded))
            .map(|(p, _)| p.clone())
            .take_while(|p| p.starts_with(&full))
            .collect();
        for p in doomed {
            tree.nodes.remove(&p);
        }
        tree.forget(&full);
        Ok(())
    }

    /// Calls `hook` after each successful-so-far [`Sysfs::write`] to a path under `prefix`
    /// (as written, or with links resolved), in registration order.
    pub fn on_write(
        &self,
        prefix: impl Into<PathBuf>,
        hook: impl Fn(&FakeSysfs, &Path, &[u8]) -> io::Result<()> + Send + Sync + 'static,
    ) {
        lock(&self.hooks).push((prefix.into(), Arc::new(hook)));
    }

    /// Every successful [`Sysfs::write`], in order, with the path as the caller wrote it.
    pub fn writes(&self) -> Vec<(PathBuf, Vec<u8>)> {
        lock(&self.writes).clone()
    }

    /// Forgets the logged writes.
    pub fn clear_writes(&self) {
        lock(&self.writes).clear();
    }

    /// The contents of file `path`, following links (not counted as a call).
    pub fn contents(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        match lock(&self.tree).node(path.as_ref(), true) {
            Ok((_, Node::File(data))) => Some(data.clone()),
            _ => None,
        }
    }

    /// The metadata of `path` itself (a final link is not followed), if it exists (not counted
    /// as a call).
    pub fn meta(&self, path: impl AsRef<Path>) -> Option<FileMeta> {
        let mut tree = lock(&self.tree);
        let (physical, node) = tree.node(path.as_ref(), false).ok()?;
        let node = node.clone();
        Some(tree.meta(&physical, &node))
    }

    /// What `path` is, following links, if it exists (not counted as a call).
    pub fn kind(&self, path: impl AsRef<Path>) -> Option<NodeKind> {
        lock(&self.tree)
            .node(path.as_ref(), true)
            .ok()
            .map(|(_, node)| node.info().kind)
    }
}

impl AgentFiles for FakeSysfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.faults.check(Op::SysfsCreateDir)?;
        self.mkdir_p(path)
    }

    fn create_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        self.faults.check(Op::SysfsCreateFile)?;
        let tree = lock(&self.tree);
        let parent = path.parent().ok_or_else(|| errno(Errno::EINVAL))?;
        match tree.nodes.get(parent) {
            Some(Node::Dir) => {}
            Some(_) => return Err(errno(Errno::ENOTDIR)),
            None => return Err(errno(Errno::ENOENT)),
        }
        drop(tree);
        self.write_file(path, data.to_vec())?;
        let mut tree = lock(&self.tree);
        let physical = tree.resolve(path, true)?;
        tree.attrs.entry(physical).or_default().mode = Some(mode & 0o7777);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.faults.check(Op::SysfsRemove)?;
        let mut tree = lock(&self.tree);
        let prefix = path.to_path_buf();
        match tree.nodes.get(path) {
            None => return Err(errno(Errno::ENOENT)),
            Some(Node::Dir) => {
                let busy = tree
                    .nodes
                    .keys()
                    .any(|k| k != &prefix && k.starts_with(&prefix));
                if busy {
                    return Err(errno(Errno::ENOTEMPTY));
                }
            }
            Some(_) => {}
        }
        tree.nodes.remove(path);
        tree.forget(path);
        Ok(())
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        self.faults.check(Op::SysfsChown)?;
        let mut tree = lock(&self.tree);
        let (physical, _) = tree.node(path, false)?;
        let attrs = tree.attrs.entry(physical).or_default();
        if let Some(uid) = uid {
            attrs.uid = uid;
        }
        if let Some(gid) = gid {
            attrs.gid = gid;
        }
        Ok(())
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.faults.check(Op::SysfsChmod)?;
        let mut tree = lock(&self.tree);
        let (physical, _) = tree.node(path, true)?;
        tree.attrs.entry(physical).or_default().mode = Some(mode & 0o7777);
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.faults.check(Op::SysfsSymlink)?;
        lock(&self.tree).create(link, Node::Symlink(target.to_owned()))
    }
}

impl Sysfs for FakeSysfs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.faults.check(Op::SysfsRead)?;
        match lock(&self.tree).node(path, true)? {
            (_, Node::File(data)) => Ok(data.clone()),
            (_, Node::Dir) => Err(errno(Errno::EISDIR)),
            _ => Err(errno(Errno::EINVAL)),
        }
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.faults.check(Op::SysfsWrite)?;
        let physical = match lock(&self.tree).node(path, true)? {
            (_, Node::Dir) => return Err(errno(Errno::EISDIR)),
            (physical, _) => physical,
        };
        let hooks: Vec<WriteHook> = lock(&self.hooks)
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix) || physical.starts_with(prefix))
            .map(|(_, hook)| Arc::clone(hook))
            .collect();
        // No lock is held while hooks run: they may use the builder methods.
        for hook in hooks {
            hook(self, &physical, data)?;
        }
        let mut tree = lock(&self.tree);
        if let Some(Node::File(contents)) = tree.nodes.get_mut(&physical) {
            *contents = data.to_vec();
            tree.touch(&physical);
        }
        drop(tree);
        lock(&self.writes).push((path.to_owned(), data.to_vec()));
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.faults.check(Op::SysfsReadDir)?;
        let mut tree = lock(&self.tree);
        let dir = match tree.node(path, true)? {
            (dir, Node::Dir) => dir,
            _ => return Err(errno(Errno::ENOTDIR)),
        };
        Ok(tree
            .children(&dir)
            .filter_map(|p| p.file_name().map(ToOwned::to_owned))
            .collect())
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.faults.check(Op::SysfsReadLink)?;
        match lock(&self.tree).node(path, false)? {
            (_, Node::Symlink(target)) => Ok(target.clone()),
            _ => Err(errno(Errno::EINVAL)),
        }
    }

    fn stat(&self, path: &Path) -> io::Result<NodeInfo> {
        self.faults.check(Op::SysfsStat)?;
        let mut tree = lock(&self.tree);
        let (physical, node) = tree.node(path, true)?;
        let mut info = node.info();
        if let Some(mode) = tree.attrs.get(&physical).and_then(|a| a.mode) {
            info.mode = mode;
        }
        Ok(info)
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta> {
        self.faults.check(Op::SysfsLstat)?;
        let mut tree = lock(&self.tree);
        let (physical, node) = tree.node(path, false)?;
        let node = node.clone();
        Ok(tree.meta(&physical, &node))
    }
}
