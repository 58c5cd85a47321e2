//! The network RPCs: UpdateInterface, UpdateRoutes, ListInterfaces, ListRoutes,
//! AddARPNeighbors, GetIPTables and SetIPTables. Kata's `types.Interface`, `types.Route` and
//! `types.ARPNeighbor` are decoded here into the network subsystem's values, and back.

use std::net::IpAddr;

use agent_protos::empty::Empty;
use agent_protos::{agent, types};
use protobuf::EnumOrUnknown;
use ttrpc::Code;

use super::error::status;
use crate::Agent;
use crate::device::PciPath;
use crate::network::{
    InterfaceConfig, InterfaceInfo, IpFamily, IpNet, MacAddr, NeighbourConfig, NetworkError,
    RouteConfig, max_prefix, parse_ip,
};

type Reply<T> = ttrpc::Result<T>;

/// UpdateInterface: the interface as the kernel reports it afterwards.
pub(crate) async fn update_interface(
    agent: &Agent,
    req: agent::UpdateInterfaceRequest,
) -> Reply<types::Interface> {
    let iface = req
        .interface
        .into_option()
        .ok_or_else(|| status(Code::INVALID_ARGUMENT, "empty update interface request"))?;
    let config = decode_interface(&iface)?;
    let info = agent.network().update_interface(&config).await?;
    Ok(encode_interface(&info))
}

/// UpdateRoutes: the whole main table afterwards.
pub(crate) async fn update_routes(
    agent: &Agent,
    req: agent::UpdateRoutesRequest,
) -> Reply<agent::Routes> {
    let routes = req
        .routes
        .into_option()
        .ok_or_else(|| status(Code::INVALID_ARGUMENT, "empty update routes request"))?;
    let wanted = routes
        .Routes
        .iter()
        .enumerate()
        .map(|(i, r)| decode_route(i, r))
        .collect::<Result<Vec<_>, _>>()?;
    let table = agent.network().update_routes(&wanted).await?;
    Ok(encode_routes(&table))
}

/// ListInterfaces.
pub(crate) async fn list_interfaces(agent: &Agent) -> Reply<agent::Interfaces> {
    let infos = agent.network().list_interfaces().await?;
    Ok(agent::Interfaces {
        Interfaces: infos.iter().map(encode_interface).collect(),
        ..Default::default()
    })
}

/// ListRoutes.
pub(crate) async fn list_routes(agent: &Agent) -> Reply<agent::Routes> {
    let table = agent.network().list_routes().await?;
    Ok(encode_routes(&table))
}

/// AddARPNeighbors.
pub(crate) async fn add_arp_neighbors(
    agent: &Agent,
    req: agent::AddARPNeighborsRequest,
) -> Reply<Empty> {
    let neighbours = req
        .neighbors
        .into_option()
        .map(|n| n.ARPNeighbors)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, n)| decode_neighbour(i, n))
        .collect::<Result<Vec<_>, _>>()?;
    agent.network().add_arp_neighbours(&neighbours).await?;
    Ok(Empty::new())
}

/// GetIPTables.
pub(crate) async fn get_ip_tables(
    agent: &Agent,
    req: agent::GetIPTablesRequest,
) -> Reply<agent::GetIPTablesResponse> {
    let data = agent.network().get_iptables(family(req.is_ipv6)).await?;
    Ok(agent::GetIPTablesResponse {
        data,
        ..Default::default()
    })
}

/// SetIPTables.
pub(crate) async fn set_ip_tables(
    agent: &Agent,
    req: agent::SetIPTablesRequest,
) -> Reply<agent::SetIPTablesResponse> {
    let data = agent
        .network()
        .set_iptables(family(req.is_ipv6), &req.data)
        .await?;
    Ok(agent::SetIPTablesResponse {
        data,
        ..Default::default()
    })
}

fn family(ipv6: bool) -> IpFamily {
    if ipv6 { IpFamily::V6 } else { IpFamily::V4 }
}

/// Whether a message declares IPv6; an unknown family number is refused.
fn declared_v6(field: &str, family: EnumOrUnknown<types::IPFamily>) -> Result<bool, NetworkError> {
    match family.enum_value() {
        Ok(types::IPFamily::v4) => Ok(false),
        Ok(types::IPFamily::v6) => Ok(true),
        Err(n) => Err(NetworkError::invalid(
            field,
            n.to_string(),
            "unknown IP family",
        )),
    }
}

/// The family of a message carrying `ips`. proto3 cannot tell an unset family from v4 (0),
/// so v4 with only IPv6 addresses is IPv6; v6 with an IPv4 address, or a mix, is refused.
fn family_of(field: &str, declared_v6: bool, ips: &[IpAddr]) -> Result<bool, NetworkError> {
    let v6 = ips.iter().filter(|ip| ip.is_ipv6()).count();
    let mixed = v6 != 0 && v6 != ips.len();
    if mixed || (declared_v6 && v6 != ips.len()) {
        let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
        return Err(NetworkError::invalid(
            field,
            list.join(", "),
            format!("addresses do not all match the family (v6={declared_v6})"),
        ));
    }
    Ok(declared_v6 || (!ips.is_empty() && v6 == ips.len()))
}

fn decode_address(field: &str, a: &types::IPAddress) -> Result<IpNet, NetworkError> {
    let net = IpNet::from_parts(field, &a.address, &a.mask)?;
    family_of(field, declared_v6(field, a.family)?, &[net.ip])?;
    Ok(net)
}

/// Decodes one `types.Interface` of UpdateInterface.
pub fn decode_interface(iface: &types::Interface) -> Result<InterfaceConfig, NetworkError> {
    let mac = match iface.hwAddr.as_str() {
        "" => None,
        text => Some(MacAddr::parse("hwAddr", text)?),
    };
    let addresses = iface
        .IPAddresses
        .iter()
        .enumerate()
        .map(|(i, a)| decode_address(&format!("IPAddresses[{i}]"), a))
        .collect::<Result<Vec<_>, _>>()?;
    let mtu =
        match iface.mtu {
            0 => None,
            mtu => Some(u32::try_from(mtu).map_err(|_| {
                NetworkError::invalid("mtu", mtu.to_string(), "does not fit 32 bits")
            })?),
        };
    let pci_path = match iface.devicePath.as_str() {
        "" => None,
        text => Some(
            text.parse::<PciPath>()
                .map_err(|e| NetworkError::invalid("devicePath", text, e.to_string()))?,
        ),
    };
    Ok(InterfaceConfig {
        name: iface.name.clone(),
        mac,
        addresses,
        mtu,
        noarp: iface.raw_flags & libc::IFF_NOARP as u32 != 0,
        pci_path,
    })
}

/// A route destination: empty, `default`, or a prefix of length 0 is the default route; a
/// bare address is a host route, except the unspecified one (Kata lists default routes as
/// `0.0.0.0`).
fn decode_dest(field: &str, text: &str) -> Result<Option<IpNet>, NetworkError> {
    if text.is_empty() || text == "default" {
        return Ok(None);
    }
    let net = IpNet::parse_cidr(field, text)?;
    let bare_unspecified = !text.contains('/') && net.ip.is_unspecified();
    Ok((net.prefix_len != 0 && !bare_unspecified).then_some(net))
}

/// A preferred source: an address, or an address with its full prefix.
fn decode_source(field: &str, text: &str) -> Result<Option<IpAddr>, NetworkError> {
    if text.is_empty() {
        return Ok(None);
    }
    let net = IpNet::parse_cidr(field, text)?;
    if net.prefix_len != max_prefix(net.ip) {
        return Err(NetworkError::invalid(
            field,
            text,
            "source-specific routes are not supported: give the preferred source address",
        ));
    }
    Ok(Some(net.ip))
}

fn decode_route(i: usize, r: &types::Route) -> Result<RouteConfig, NetworkError> {
    let field = |name: &str| format!("Routes[{i}].{name}");
    let dest = decode_dest(&field("dest"), &r.dest)?;
    let gateway = match r.gateway.as_str() {
        "" => None,
        text => Some(parse_ip(&field("gateway"), text)?),
    };
    let source = decode_source(&field("source"), &r.source)?;
    let ips: Vec<IpAddr> = dest
        .map(|d| d.ip)
        .into_iter()
        .chain(gateway)
        .chain(source)
        .collect();
    let ipv6 = family_of(
        &field("family"),
        declared_v6(&field("family"), r.family)?,
        &ips,
    )?;
    let scope = u8::try_from(r.scope)
        .map_err(|_| NetworkError::invalid(field("scope"), r.scope.to_string(), "over 255"))?;
    Ok(RouteConfig {
        dest,
        gateway,
        device: r.device.clone(),
        source,
        scope,
        ipv6,
        flags: r.flags,
        mtu: r.mtu,
    })
}

fn decode_neighbour(i: usize, n: &types::ARPNeighbor) -> Result<NeighbourConfig, NetworkError> {
    let field = |name: &str| format!("ARPNeighbors[{i}].{name}");
    let to = n
        .toIPAddress
        .as_ref()
        .ok_or_else(|| NetworkError::invalid(field("toIPAddress"), "", "missing"))?;
    let ip = parse_ip(&field("toIPAddress"), &to.address)?;
    family_of(
        &field("toIPAddress"),
        declared_v6(&field("toIPAddress"), to.family)?,
        &[ip],
    )?;
    let lladdr = match n.lladdr.as_str() {
        "" => None,
        text => Some(MacAddr::parse(&field("lladdr"), text)?),
    };
    let byte = |name: &str, value: i32| {
        u8::try_from(value)
            .map_err(|_| NetworkError::invalid(field(name), value.to_string(), "outside 0..=255"))
    };
    Ok(NeighbourConfig {
        ip,
        device: n.device.clone(),
        lladdr,
        state: u16::from(byte("state", n.state)?),
        flags: byte("flags", n.flags)?,
    })
}

fn ip_family(ipv6: bool) -> EnumOrUnknown<types::IPFamily> {
    EnumOrUnknown::new(if ipv6 {
        types::IPFamily::v6
    } else {
        types::IPFamily::v4
    })
}

/// Encodes an interface as Kata's `types.Interface` (`device` is its name too).
pub fn encode_interface(info: &InterfaceInfo) -> types::Interface {
    types::Interface {
        device: info.name.clone(),
        name: info.name.clone(),
        IPAddresses: info
            .addresses
            .iter()
            .map(|a| types::IPAddress {
                family: ip_family(a.is_ipv6()),
                address: a.ip.to_string(),
                mask: a.prefix_len.to_string(),
                ..Default::default()
            })
            .collect(),
        mtu: u64::from(info.mtu),
        hwAddr: info.mac.clone(),
        type_: info.kind.clone(),
        raw_flags: info.flags,
        ..Default::default()
    }
}

/// Encodes routes as Kata's `Routes`; the default route's destination is `0.0.0.0/0` (or
/// `::/0`).
pub fn encode_routes(table: &[RouteConfig]) -> agent::Routes {
    let route = |r: &RouteConfig| types::Route {
        dest: match r.dest {
            Some(net) => net.to_string(),
            None if r.ipv6 => "::/0".to_owned(),
            None => "0.0.0.0/0".to_owned(),
        },
        gateway: r.gateway.map(|g| g.to_string()).unwrap_or_default(),
        device: r.device.clone(),
        source: r.source.map(|s| s.to_string()).unwrap_or_default(),
        scope: u32::from(r.scope),
        family: ip_family(r.ipv6),
        flags: r.flags,
        mtu: r.mtu,
        ..Default::default()
    };
    agent::Routes {
        Routes: table.iter().map(route).collect(),
        ..Default::default()
    }
}
