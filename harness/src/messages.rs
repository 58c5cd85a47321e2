//! Kata's network messages built from plain strings, as a host runtime fills them: for tests,
//! benches and tools that call UpdateInterface, UpdateRoutes or AddARPNeighbors.

use agent_protos::types;
use protobuf::{EnumOrUnknown, MessageField};

/// `v6` or `v4`.
pub fn family(v6: bool) -> EnumOrUnknown<types::IPFamily> {
    EnumOrUnknown::new(if v6 {
        types::IPFamily::v6
    } else {
        types::IPFamily::v4
    })
}

/// An address with its mask (`"24"`), its family from the address.
pub fn ip_address(address: &str, mask: &str) -> types::IPAddress {
    types::IPAddress {
        family: family(address.contains(':')),
        address: address.into(),
        mask: mask.into(),
        ..Default::default()
    }
}

/// An interface `name` (also its `device`) with hardware address `mac`, `(address, mask)`
/// pairs and `mtu`.
pub fn interface(name: &str, mac: &str, addrs: &[(&str, &str)], mtu: u64) -> types::Interface {
    types::Interface {
        name: name.into(),
        device: name.into(),
        hwAddr: mac.into(),
        mtu,
        IPAddresses: addrs.iter().map(|(a, m)| ip_address(a, m)).collect(),
        ..Default::default()
    }
}

/// A route to `dest` (empty: default) via `gateway` (empty: none) on `device`, its family
/// from the addresses.
pub fn route(dest: &str, gateway: &str, device: &str) -> types::Route {
    types::Route {
        dest: dest.into(),
        gateway: gateway.into(),
        device: device.into(),
        family: family(dest.contains(':') || gateway.contains(':')),
        ..Default::default()
    }
}

/// A neighbour `ip` on `device` with hardware address `lladdr` (empty: none).
pub fn neighbour(ip: &str, device: &str, lladdr: &str) -> types::ARPNeighbor {
    types::ARPNeighbor {
        toIPAddress: MessageField::some(ip_address(ip, "")),
        device: device.into(),
        lladdr: lladdr.into(),
        ..Default::default()
    }
}
