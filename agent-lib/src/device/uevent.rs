//! Kernel uevents: parsing the raw NETLINK_KOBJECT_UEVENT datagram into a [`Uevent`].

use std::collections::BTreeMap;

/// One kernel uevent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `change`, `bind`, `unbind`, `move`, `online`, `offline`.
    pub action: String,
    /// The kobject path under /sys (`/devices/pci0000:00/0000:00:02.0/...`).
    pub devpath: String,
    /// `block`, `pci`, `net`, `memory`, ...
    pub subsystem: String,
    /// The /dev node name (`vda`, `vfio/12`), empty when none.
    pub devname: String,
    /// The network interface name, empty when none.
    pub interface: String,
    /// The kernel's sequence number.
    pub seqnum: u64,
    /// Every `KEY=VALUE` pair of the event, the ones above included.
    pub vars: BTreeMap<String, String>,
}

/// Why a datagram is not a kernel uevent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UeventError {
    /// The `ACTION@DEVPATH` header is missing (libudev's own messages start `libudev`).
    #[error("no ACTION@DEVPATH header")]
    Header,
    /// A required key is absent or empty.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field is not `KEY=VALUE` or not UTF-8.
    #[error("malformed field {0:?}")]
    Field(String),
    /// `SEQNUM` is not a number.
    #[error("bad SEQNUM {0:?}")]
    Seqnum(String),
}

impl Uevent {
    /// Parses a datagram: `ACTION@DEVPATH\0KEY=VALUE\0...`.
    pub fn parse(raw: &[u8]) -> Result<Uevent, UeventError> {
        let mut fields = raw.split(|b| *b == 0).filter(|f| !f.is_empty());
        let header = fields.next().ok_or(UeventError::Header)?;
        if !header.contains(&b'@') {
            return Err(UeventError::Header);
        }
        let mut vars = BTreeMap::new();
        for field in fields {
            let text = std::str::from_utf8(field)
                .map_err(|_| UeventError::Field(String::from_utf8_lossy(field).into_owned()))?;
            let (key, value) = text
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| UeventError::Field(text.to_owned()))?;
            vars.insert(key.to_owned(), value.to_owned());
        }
        let required = |key: &'static str| -> Result<String, UeventError> {
            match vars.get(key) {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                _ => Err(UeventError::Missing(key)),
            }
        };
        let action = required("ACTION")?;
        let devpath = required("DEVPATH")?;
        let subsystem = required("SUBSYSTEM")?;
        let seqnum_text = required("SEQNUM")?;
        let seqnum = seqnum_text
            .parse()
            .map_err(|_| UeventError::Seqnum(seqnum_text))?;
        let optional = |key: &str| vars.get(key).cloned().unwrap_or_default();
        Ok(Uevent {
            devname: optional("DEVNAME"),
            interface: optional("INTERFACE"),
            action,
            devpath,
            subsystem,
            seqnum,
            vars,
        })
    }

    /// The value of `key`, if the event carries it.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Whether this is an `add` event.
    pub fn is_add(&self) -> bool {
        self.action == "add"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(fields: &[&str]) -> Vec<u8> {
        fields.iter().flat_map(|f| f.bytes().chain([0])).collect()
    }

    #[test]
    fn parses_a_virtio_blk_add() {
        let ev = Uevent::parse(&raw(&[
            "add@/devices/pci0000:00/0000:00:02.0/0000:01:00.0/virtio0/block/vda",
            "ACTION=add",
            "DEVPATH=/devices/pci0000:00/0000:00:02.0/0000:01:00.0/virtio0/block/vda",
            "SUBSYSTEM=block",
            "MAJOR=254",
            "MINOR=0",
            "DEVNAME=vda",
            "DEVTYPE=disk",
            "SEQNUM=603",
        ]))
        .unwrap();
        assert_eq!(ev.action, "add");
        assert_eq!(ev.subsystem, "block");
        assert_eq!(ev.devname, "vda");
        assert_eq!(ev.seqnum, 603);
        assert_eq!(ev.var("MAJOR"), Some("254"));
        assert!(ev.interface.is_empty());
        assert!(ev.is_add());
    }

    #[test]
    fn parses_a_net_add() {
        let ev = Uevent::parse(&raw(&[
            "add@/devices/virtual/net/veth0",
            "ACTION=add",
            "DEVPATH=/devices/virtual/net/veth0",
            "SUBSYSTEM=net",
            "INTERFACE=veth0",
            "IFINDEX=3",
            "SEQNUM=1",
        ]))
        .unwrap();
        assert_eq!(ev.interface, "veth0");
    }

    #[test]
    fn rejects_malformed_datagrams() {
        let cases: &[(&[u8], UeventError)] = &[
            (b"", UeventError::Header),
            (b"libudev\0ACTION=add\0", UeventError::Header),
            (
                b"add@/x\0ACTION=add\0SUBSYSTEM=block\0SEQNUM=1\0",
                UeventError::Missing("DEVPATH"),
            ),
            (
                b"add@/x\0ACTION=add\0DEVPATH=/x\0SEQNUM=1\0",
                UeventError::Missing("SUBSYSTEM"),
            ),
            (
                b"add@/x\0ACTION=add\0DEVPATH=/x\0SUBSYSTEM=b\0",
                UeventError::Missing("SEQNUM"),
            ),
            (
                b"add@/x\0ACTION=add\0DEVPATH=/x\0SUBSYSTEM=b\0SEQNUM=x\0",
                UeventError::Seqnum("x".into()),
            ),
            (b"add@/x\0garbage\0", UeventError::Field("garbage".into())),
            (b"add@/x\0=v\0", UeventError::Field("=v".into())),
            (b"add@/x\0A=\xff\0", UeventError::Field("A=\u{fffd}".into())),
        ];
        for (bytes, want) in cases {
            assert_eq!(Uevent::parse(bytes).as_ref(), Err(want), "{bytes:?}");
        }
    }
}
