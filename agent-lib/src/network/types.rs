//! The network subsystem's values: addresses with prefixes, hardware addresses, and what the
//! host asks of interfaces, routes and neighbours. Parsers here are the only place request
//! strings become addresses; each error names the offending value.

use std::fmt;
use std::net::IpAddr;

use super::NetworkError;
use crate::device::PciPath;

/// An IP address with a prefix length that fits its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The address.
    pub ip: IpAddr,
    /// Prefix length: at most 32 (IPv4) or 128 (IPv6).
    pub prefix_len: u8,
}

impl IpNet {
    /// `ip/prefix_len`, refused when the prefix is too long for the family.
    pub fn new(ip: IpAddr, prefix_len: u8) -> Result<Self, NetworkError> {
        if prefix_len > max_prefix(ip) {
            return Err(NetworkError::invalid(
                "prefix length",
                format!("{ip}/{prefix_len}"),
                format!("longer than {} bits", max_prefix(ip)),
            ));
        }
        Ok(IpNet { ip, prefix_len })
    }

    /// An address and a separate mask string (`"24"`), as `types.IPAddress` carries them; an
    /// empty mask is the whole address (/32 or /128).
    pub fn from_parts(field: &str, address: &str, mask: &str) -> Result<Self, NetworkError> {
        let ip = parse_ip(field, address)?;
        let prefix_len = if mask.is_empty() {
            max_prefix(ip)
        } else {
            mask.trim().parse::<u8>().map_err(|_| {
                NetworkError::invalid(field, mask, "mask must be a prefix length (0-128)")
            })?
        };
        IpNet::new(ip, prefix_len).map_err(|_| {
            NetworkError::invalid(
                field,
                format!("{address}/{mask}"),
                format!("prefix longer than {} bits", max_prefix(ip)),
            )
        })
    }

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (the whole address).
    pub fn parse_cidr(field: &str, text: &str) -> Result<Self, NetworkError> {
        match text.split_once('/') {
            Some((ip, len)) => {
                let ip = parse_ip(field, ip)
                    .map_err(|_| NetworkError::invalid(field, text, "not an IP address"))?;
                let len = len.parse::<u8>().map_err(|_| {
                    NetworkError::invalid(field, text, "prefix length is not a number")
                })?;
                IpNet::new(ip, len).map_err(|_| {
                    NetworkError::invalid(
                        field,
                        text,
                        format!("prefix longer than {} bits", max_prefix(ip)),
                    )
                })
            }
            None => {
                let ip = parse_ip(field, text)?;
                Ok(IpNet {
                    ip,
                    prefix_len: max_prefix(ip),
                })
            }
        }
    }

    /// Whether this is an IPv6 network.
    pub fn is_ipv6(&self) -> bool {
        self.ip.is_ipv6()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

/// The longest prefix of `ip`'s family.
pub fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Parses an IPv4 or IPv6 address.
pub fn parse_ip(field: &str, text: &str) -> Result<IpAddr, NetworkError> {
    text.trim()
        .parse()
        .map_err(|_| NetworkError::invalid(field, text, "not an IP address"))
}

/// An Ethernet hardware address, lower-case `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(String);

impl MacAddr {
    /// Parses six `:`-separated hex bytes, either case.
    pub fn parse(field: &str, text: &str) -> Result<Self, NetworkError> {
        let parts: Vec<&str> = text.split(':').collect();
        let hex_pair = |p: &&str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit());
        if parts.len() != 6 || !parts.iter().all(hex_pair) {
            return Err(NetworkError::invalid(
                field,
                text,
                "a hardware address is 6 bytes written aa:bb:cc:dd:ee:ff",
            ));
        }
        Ok(MacAddr(text.to_ascii_lowercase()))
    }

    /// The address as the kernel reports it (lower case).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `IFNAMSIZ - 1`.
pub const MAX_IFNAME: usize = 15;

/// Checks an interface name as the kernel would (`dev_valid_name`).
pub fn check_ifname(field: &str, name: &str) -> Result<(), NetworkError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_IFNAME {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()) {
        Some("contains '/', ':' or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetworkError::invalid(field, name, reason)),
        None => Ok(()),
    }
}

/// What UpdateInterface asks for one NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The name the interface must end up with.
    pub name: String,
    /// The hardware address it is found by (and given, when it was found by name).
    pub mac: Option<MacAddr>,
    /// Addresses to add (or replace).
    pub addresses: Vec<IpNet>,
    /// MTU; `None` keeps the current one.
    pub mtu: Option<u32>,
    /// `IFF_NOARP` wanted.
    pub noarp: bool,
    /// Where the NIC is plugged, when it may still be on its way.
    pub pci_path: Option<PciPath>,
}

/// An interface as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Name.
    pub name: String,
    /// Hardware address (empty when the link has none).
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// Addresses, in the kernel's order.
    pub addresses: Vec<IpNet>,
    /// Link kind (`veth`, `bridge`...); empty when the kernel reports none.
    pub kind: String,
    /// `IFF_*` flags.
    pub flags: u32,
}

/// One route of UpdateRoutes, or of the main table as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    /// Destination; `None` is the default route.
    pub dest: Option<IpNet>,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface name; empty lets the kernel choose (listing: no output interface).
    pub device: String,
    /// Preferred source address.
    pub source: Option<IpAddr>,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// IPv6 (else IPv4).
    pub ipv6: bool,
    /// `RTNH_F_*` flags.
    pub flags: u32,
    /// MTU metric; 0 when unset.
    pub mtu: u32,
}

/// One neighbour of AddARPNeighbors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighbourConfig {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// The interface it is reached on.
    pub device: String,
    /// Its hardware address, when given.
    pub lladdr: Option<MacAddr>,
    /// `NUD_*` state; 0 is asked as `NUD_PERMANENT`.
    pub state: u16,
    /// `NTF_*` flags.
    pub flags: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_prefixes() {
        let net = IpNet::from_parts("ip", "10.0.0.2", "24").unwrap();
        assert_eq!(net.to_string(), "10.0.0.2/24");
        assert_eq!(
            IpNet::from_parts("ip", "fd00::2", "").unwrap().prefix_len,
            128
        );
        assert_eq!(
            IpNet::parse_cidr("dest", "2001:db8::/32")
                .unwrap()
                .to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            IpNet::parse_cidr("dest", "10.1.2.3").unwrap().prefix_len,
            32
        );
        for (addr, mask) in [("10.0.0.2", "33"), ("10.0.0.2", "x"), ("10.0.0.300", "8")] {
            let err = IpNet::from_parts("ip", addr, mask).unwrap_err().to_string();
            assert!(err.contains("ip"), "{err}");
        }
        for text in ["10.0.0.0/33", "fd00::/129", "10.0.0.0/", "/8", "x/8"] {
            let err = IpNet::parse_cidr("dest", text).unwrap_err().to_string();
            assert!(err.contains(text), "{err}");
        }
    }

    #[test]
    fn parses_six_byte_macs_only() {
        assert_eq!(
            MacAddr::parse("mac", "02:AA:00:00:00:01").unwrap().as_str(),
            "02:aa:00:00:00:01"
        );
        for bad in [
            "",
            "02:aa:00:00:00",
            "02:aa:00:00:00:01:02",
            "02-aa-00-00-00-01",
            "2:aa:00:00:00:01",
            "0g:aa:00:00:00:01",
        ] {
            let err = MacAddr::parse("hwAddr", bad).unwrap_err().to_string();
            assert!(err.contains("hwAddr"), "{err}");
        }
    }

    #[test]
    fn checks_interface_names_as_the_kernel() {
        check_ifname("name", "eth0").unwrap();
        check_ifname("name", "a23456789012345").unwrap();
        for bad in ["", ".", "..", "a234567890123456", "eth/0", "eth:0", "eth 0"] {
            assert!(check_ifname("name", bad).is_err(), "{bad:?}");
        }
    }
}
