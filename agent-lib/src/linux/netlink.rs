//! [`RtNetlink`]: the [`Netlink`] seam on rtnetlink.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;
use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric,
    RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{AddressMessageBuilder, Handle, LinkUnspec, RouteMessageBuilder};
use tokio::task::JoinHandle;

use crate::host::{Address, Link, LinkUpdate, Neighbour, Netlink, Route};

/// `RTNH_F_DEAD | RTNH_F_LINKDOWN`: state the kernel reports on routes but refuses on input.
const KERNEL_ONLY_ROUTE_FLAGS: u32 = 0x1 | 0x10;
/// `RT_SCOPE_NOWHERE`: matches any scope when deleting.
const RT_SCOPE_NOWHERE: u8 = 255;

/// The real [`Netlink`]: an rtnetlink connection in the network namespace of the thread that
/// called [`RtNetlink::new`].
#[derive(Debug)]
pub struct RtNetlink {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl RtNetlink {
    /// Opens an rtnetlink socket and spawns its connection task on the current tokio runtime.
    pub fn new() -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let (connection, handle, _messages) = rtnetlink::new_connection()?;
        let connection = runtime.spawn(connection);
        Ok(RtNetlink { handle, connection })
    }

    /// The underlying handle, for tests that create links.
    #[cfg(test)]
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for RtNetlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Converts an rtnetlink error to `io::Error`, keeping the kernel's errno.
fn nl_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(msg) if msg.raw_code() != 0 => {
            io::Error::from_raw_os_error(msg.raw_code().saturating_abs())
        }
        rtnetlink::Error::InvalidHardwareAddress(_)
        | rtnetlink::Error::InvalidIp(_)
        | rtnetlink::Error::InvalidAddress(..)
        | rtnetlink::Error::InvalidNla(_) => io::Error::new(io::ErrorKind::InvalidData, e),
        other => io::Error::other(other),
    }
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Formats a hardware address as lower-case `aa:bb:cc`.
pub(crate) fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`, either case. Like Go's `net.ParseMAC` (which Kata uses), only
/// 6-, 8- and 20-byte (InfiniBand) addresses are accepted.
pub(crate) fn parse_mac(text: &str) -> io::Result<Vec<u8>> {
    let bad = || invalid_input(format!("bad hardware address {text:?}"));
    let bytes = text
        .split(':')
        .map(|part| match part.as_bytes() {
            [hi, lo] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                u8::from_str_radix(part, 16).map_err(|_| bad())
            }
            _ => Err(bad()),
        })
        .collect::<io::Result<Vec<u8>>>()?;
    match bytes.len() {
        6 | 8 | 20 => Ok(bytes),
        _ => Err(bad()),
    }
}

fn link_from_message(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: String::new(),
        mtu: 0,
        flags: msg.header.flags.bits(),
        kind: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name.clone_from(name),
            LinkAttribute::Address(mac) => link.mac = format_mac(mac),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.iter().find_map(|info| match info {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    link
}

fn address_from_message(msg: &AddressMessage) -> Option<Address> {
    // IFA_LOCAL is the local address (IFA_ADDRESS is the peer on point-to-point links); IPv6
    // reports only IFA_ADDRESS.
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    Some(Address {
        index: msg.header.index,
        ip: local.or(address)?,
        prefix_len: msg.header.prefix_len,
    })
}

fn address_message(addr: &Address) -> AddressMessage {
    match addr.ip {
        IpAddr::V4(ip) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(addr.index)
            .address(ip, addr.prefix_len)
            .build(),
        IpAddr::V6(ip) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(addr.index)
            .address(ip, addr.prefix_len)
            .build(),
    }
}

fn route_ip(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// The route's table: `RTA_TABLE` when present, else the header's.
fn route_table(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table))
}

fn route_from_message(msg: &RouteMessage) -> Route {
    let mut route = Route {
        dest: None,
        gateway: None,
        oif: None,
        source: None,
        scope: u8::from(msg.header.scope),
        mtu: 0,
        flags: msg.header.flags.bits(),
        ipv6: msg.header.address_family == AddressFamily::Inet6,
        kernel: msg.header.protocol == RouteProtocol::Kernel,
    };
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => {
                route.dest = route_ip(a).map(|ip| (ip, msg.header.destination_prefix_length));
            }
            RouteAttribute::Gateway(a) => route.gateway = route_ip(a),
            RouteAttribute::PrefSource(a) => route.source = route_ip(a),
            RouteAttribute::Oif(oif) => route.oif = Some(*oif),
            RouteAttribute::Metrics(metrics) => {
                for metric in metrics {
                    if let RouteMetric::Mtu(mtu) = metric {
                        route.mtu = *mtu;
                    }
                }
            }
            _ => {}
        }
    }
    route
}

fn neighbour_from_message(msg: &NeighbourMessage) -> Option<Neighbour> {
    let ip = msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        _ => None,
    })?;
    let lladdr = msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(mac) if !mac.is_empty() => Some(format_mac(mac)),
        _ => None,
    });
    Some(Neighbour {
        index: msg.header.ifindex,
        ip,
        lladdr,
        state: u16::from(msg.header.state),
        flags: msg.header.flags.bits(),
    })
}

/// Checks that `ip` belongs to the route's family.
fn same_family(route: &Route, ip: IpAddr, what: &str) -> io::Result<()> {
    if ip.is_ipv6() == route.ipv6 {
        Ok(())
    } else {
        Err(invalid_input(format!(
            "route {what} {ip} does not match the route family (ipv6={})",
            route.ipv6
        )))
    }
}

/// The rtnetlink message for `route` in the main table. For an add, it carries protocol boot,
/// unicast type, the route's scope and its MTU metric; for a delete, protocol, type and scope are
/// left open (as `ip route del` does) so the kernel matches the route however it was added.
fn route_message(route: &Route, for_delete: bool) -> io::Result<RouteMessage> {
    let mut msg = if route.ipv6 {
        RouteMessageBuilder::<Ipv6Addr>::new().build()
    } else {
        RouteMessageBuilder::<Ipv4Addr>::new().build()
    };
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    if for_delete {
        msg.header.protocol = RouteProtocol::Unspec;
        msg.header.kind = RouteType::Unspec;
        msg.header.scope = RouteScope::from(RT_SCOPE_NOWHERE);
    } else {
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = RouteScope::from(route.scope);
        msg.header.flags = RouteFlags::from_bits_retain(route.flags & !KERNEL_ONLY_ROUTE_FLAGS);
    }
    if let Some((ip, len)) = route.dest {
        same_family(route, ip, "destination")?;
        let max = if route.ipv6 { 128 } else { 32 };
        if len > max {
            return Err(invalid_input(format!("route prefix length {len} > {max}")));
        }
        msg.header.destination_prefix_length = len;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(ip)));
    }
    if let Some(gw) = route.gateway {
        same_family(route, gw, "gateway")?;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(oif) = route.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(src) = route.source {
        same_family(route, src, "source")?;
        msg.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    if route.mtu != 0 && !for_delete {
        msg.attributes
            .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(route.mtu)]));
    }
    Ok(msg)
}

#[async_trait]
impl Netlink for RtNetlink {
    async fn links(&self) -> io::Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl_err)?;
        Ok(messages.iter().map(link_from_message).collect())
    }

    /// One RTM_SETLINK carrying every requested change (the kernel applies the name before the
    /// flags). Older kernels refuse to rename a link that is up (EBUSY).
    async fn set_link(&self, index: u32, update: &LinkUpdate) -> io::Result<()> {
        if *update == LinkUpdate::default() {
            return Ok(());
        }
        tracing::debug!(index, ?update, "set link");
        let mut builder = LinkUnspec::new_with_index(index);
        if let Some(name) = &update.name {
            builder = builder.name(name.clone());
        }
        if let Some(mtu) = update.mtu {
            builder = builder.mtu(mtu);
        }
        if let Some(mac) = &update.mac {
            builder = builder.address(parse_mac(mac)?);
        }
        if let Some(arp) = update.arp {
            builder = builder.arp(arp);
        }
        match update.up {
            Some(true) => builder = builder.up(),
            Some(false) => builder = builder.down(),
            None => {}
        }
        self.handle
            .link()
            .set(builder.build())
            .execute()
            .await
            .map_err(nl_err)
    }

    async fn addresses(&self) -> io::Result<Vec<Address>> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl_err)?;
        Ok(messages.iter().filter_map(address_from_message).collect())
    }

    async fn add_address(&self, addr: &Address) -> io::Result<()> {
        tracing::debug!(?addr, "add address");
        self.handle
            .address()
            .add(addr.index, addr.ip, addr.prefix_len)
            .replace()
            .execute()
            .await
            .map_err(nl_err)
    }

    async fn del_address(&self, addr: &Address) -> io::Result<()> {
        tracing::debug!(?addr, "delete address");
        self.handle
            .address()
            .del(address_message(addr))
            .execute()
            .await
            .map_err(nl_err)
    }

    async fn routes(&self) -> io::Result<Vec<Route>> {
        let mut routes = Vec::new();
        let requests = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for request in requests {
            let messages: Vec<RouteMessage> = self
                .handle
                .route()
                .get(request)
                .execute()
                .try_collect()
                .await
                .map_err(nl_err)?;
            routes.extend(
                messages
                    .iter()
                    .filter(|m| route_table(m) == u32::from(RouteHeader::RT_TABLE_MAIN))
                    .map(route_from_message),
            );
        }
        Ok(routes)
    }

    async fn add_route(&self, route: &Route) -> io::Result<()> {
        tracing::debug!(?route, "add route");
        let msg = route_message(route, false)?;
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(nl_err)
    }

    async fn del_route(&self, route: &Route) -> io::Result<()> {
        tracing::debug!(?route, "delete route");
        let msg = route_message(route, true)?;
        self.handle.route().del(msg).execute().await.map_err(nl_err)
    }

    async fn neighbours(&self) -> io::Result<Vec<Neighbour>> {
        let messages: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl_err)?;
        Ok(messages.iter().filter_map(neighbour_from_message).collect())
    }

    async fn del_neighbour(&self, neigh: &Neighbour) -> io::Result<()> {
        tracing::debug!(?neigh, "delete neighbour");
        let mut msg = NeighbourMessage::default();
        msg.header.family = match neigh.ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.header.ifindex = neigh.index;
        msg.attributes
            .push(NeighbourAttribute::Destination(match neigh.ip {
                IpAddr::V4(ip) => NeighbourAddress::Inet(ip),
                IpAddr::V6(ip) => NeighbourAddress::Inet6(ip),
            }));
        self.handle
            .neighbours()
            .del(msg)
            .execute()
            .await
            .map_err(nl_err)
    }

    async fn add_neighbour(&self, neigh: &Neighbour) -> io::Result<()> {
        tracing::debug!(?neigh, "add neighbour");
        let state = match neigh.state {
            0 => NeighbourState::Permanent,
            s => NeighbourState::from(s),
        };
        let mut request = self
            .handle
            .neighbours()
            .add(neigh.index, neigh.ip)
            .state(state)
            .flags(NeighbourFlags::from_bits_retain(neigh.flags))
            .replace();
        if let Some(lladdr) = &neigh.lladdr {
            request = request.link_layer_address(&parse_mac(lladdr)?);
        }
        request.execute().await.map_err(nl_err)
    }
}

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod tests;
