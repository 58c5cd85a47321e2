//! What the guest kernel does when hardware changes: sysfs changes and uevents, as one ordered
//! sequence of [`KernelStep`]s that the guest model plays (see [`super::guest`]).

use std::fmt;
use std::io;
use std::path::Path;

use agent_fakes::{FakeNetlink, FakeSysfs};
use kata_agent::host::NodeKind;

/// A change to the guest's /sys or /dev, or to its network links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SysfsOp {
    /// `mkdir -p`.
    Dir(String),
    /// A file with its contents (an attribute).
    File(String, String),
    /// A symbolic link and its target.
    Link(String, String),
    /// A device node under /dev.
    Node {
        /// The node's path.
        path: String,
        /// Block or character device.
        kind: NodeKind,
        /// Major number.
        major: u64,
        /// Minor number.
        minor: u64,
    },
    /// Removes a path and everything under it (missing is fine).
    Remove(String),
    /// A network interface appears in netlink; its index fills `{ifindex}` in later events.
    NetUp {
        /// The interface name.
        name: String,
        /// Its MAC address.
        mac: String,
        /// Its MTU.
        mtu: u32,
    },
    /// The network interface called `name` disappears from netlink.
    NetDown(String),
}

/// One uevent as the kernel builds it, before its SEQNUM is assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelEvent {
    /// `add`, `remove`, `bind`, `unbind`, `change`, `online`...
    pub action: String,
    /// The kobject path (`/devices/...`).
    pub devpath: String,
    /// The variables after `DEVPATH`, in the kernel's order (`SUBSYSTEM` first); SEQNUM excluded.
    pub fields: Vec<(String, String)>,
    /// A SEQNUM to use instead of the kernel's counter (replayed raw uevents).
    pub seqnum: Option<u64>,
}

impl KernelEvent {
    /// The value of `key`, if present.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The subsystem, or an empty string.
    pub fn subsystem(&self) -> &str {
        self.var("SUBSYSTEM").unwrap_or_default()
    }
}

impl fmt::Display for KernelEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.action, self.devpath)
    }
}

/// One step of a kernel sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelStep {
    /// Change sysfs (applied when the sequence is played, before later events are sent).
    Sysfs(SysfsOp),
    /// Emit a uevent.
    Event(KernelEvent),
}

/// Builds a kernel sequence step by step.
#[derive(Clone, Debug, Default)]
pub struct Seq {
    steps: Vec<KernelStep>,
}

impl Seq {
    /// An empty sequence.
    pub fn new() -> Self {
        Self::default()
    }

    /// The steps, in order.
    pub fn into_steps(self) -> Vec<KernelStep> {
        self.steps
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Adds a sysfs change.
    pub fn op(&mut self, op: SysfsOp) -> &mut Self {
        self.steps.push(KernelStep::Sysfs(op));
        self
    }

    /// `mkdir -p path`.
    pub fn dir(&mut self, path: impl Into<String>) -> &mut Self {
        self.op(SysfsOp::Dir(path.into()))
    }

    /// A file with `data`.
    pub fn file(&mut self, path: impl Into<String>, data: impl Into<String>) -> &mut Self {
        self.op(SysfsOp::File(path.into(), data.into()))
    }

    /// A link at `path` to `target`.
    pub fn link(&mut self, path: impl Into<String>, target: impl Into<String>) -> &mut Self {
        self.op(SysfsOp::Link(path.into(), target.into()))
    }

    /// A device node.
    pub fn node(
        &mut self,
        path: impl Into<String>,
        kind: NodeKind,
        major: u64,
        minor: u64,
    ) -> &mut Self {
        self.op(SysfsOp::Node {
            path: path.into(),
            kind,
            major,
            minor,
        })
    }

    /// Removes `path` and what is under it.
    pub fn remove(&mut self, path: impl Into<String>) -> &mut Self {
        self.op(SysfsOp::Remove(path.into()))
    }

    /// A uevent with `fields` after DEVPATH.
    pub fn event(&mut self, action: &str, devpath: &str, fields: &[(&str, &str)]) -> &mut Self {
        self.steps.push(KernelStep::Event(KernelEvent {
            action: action.to_owned(),
            devpath: devpath.to_owned(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            seqnum: None,
        }));
        self
    }

    /// A uevent with owned `fields`.
    pub fn event_owned(
        &mut self,
        action: &str,
        devpath: &str,
        fields: Vec<(String, String)>,
    ) -> &mut Self {
        self.steps.push(KernelStep::Event(KernelEvent {
            action: action.to_owned(),
            devpath: devpath.to_owned(),
            fields,
            seqnum: None,
        }));
        self
    }

    /// Appends another sequence.
    pub fn extend(&mut self, other: Seq) -> &mut Self {
        self.steps.extend(other.steps);
        self
    }
}

/// Applies one sysfs change; returns the interface index of a [`SysfsOp::NetUp`].
pub fn apply(sysfs: &FakeSysfs, netlink: &FakeNetlink, op: &SysfsOp) -> io::Result<Option<u32>> {
    match op {
        SysfsOp::Dir(path) => sysfs.mkdir_p(path)?,
        SysfsOp::File(path, data) => sysfs.write_file(path, data.as_bytes())?,
        SysfsOp::Link(path, target) => {
            // Re-plugging recreates links: replace what is there.
            let _ = sysfs.remove(path);
            sysfs.symlink(path, target)?;
        }
        SysfsOp::Node {
            path,
            kind,
            major,
            minor,
        } => {
            let _ = sysfs.remove(path);
            sysfs.mknod(path, *kind, *major, *minor)?;
        }
        SysfsOp::Remove(path) => match sysfs.remove(Path::new(path)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        },
        SysfsOp::NetUp { name, mac, mtu } => {
            return netlink.add_link(name, mac, *mtu).map(Some);
        }
        SysfsOp::NetDown(name) => {
            let index = netlink
                .snapshot()
                .links
                .iter()
                .find(|l| &l.name == name)
                .map(|l| l.index);
            if let Some(index) = index {
                netlink.remove_link(index);
            }
        }
    }
    Ok(None)
}

/// The relative link target from directory `from` (absolute) to `to` (absolute), as sysfs
/// stores its links (`/sys/block/vda -> ../devices/pci0000:00/...`).
pub fn relative(from_dir: &str, to: &str) -> String {
    let from: Vec<&str> = from_dir.split('/').filter(|s| !s.is_empty()).collect();
    let to_parts: Vec<&str> = to.split('/').filter(|s| !s.is_empty()).collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out: Vec<&str> = vec![".."; from.len() - common];
    out.extend(&to_parts[common..]);
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn relative_links_go_up_then_down() {
        assert_eq!(
            relative("/sys/block", "/sys/devices/pci0000:00/x/block/vda"),
            "../devices/pci0000:00/x/block/vda"
        );
        assert_eq!(
            relative(
                "/sys/bus/pci/devices",
                "/sys/devices/pci0000:00/0000:00:02.0"
            ),
            "../../../devices/pci0000:00/0000:00:02.0"
        );
    }
}
