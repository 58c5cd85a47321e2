//! `FakeNetlink`: link, address, route and neighbour tables with the kernel's errors.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use kata_agent::host::{Address, Link, LinkUpdate, Neighbour, Netlink, Route};
use nix::errno::Errno;

use crate::faults::{Faults, Op, errno, lock};

/// `IFNAMSIZ` minus the NUL.
const MAX_NAME: usize = 15;
/// The smallest MTU an Ethernet device accepts (`ETH_MIN_MTU`).
const MIN_MTU: u32 = 68;
/// The largest MTU the fake accepts (virtio-net's maximum).
const MAX_MTU: u32 = 65535;
/// `RTNH_F_ONLINK`: the gateway is on the link even without a covering route.
const RTNH_F_ONLINK: u32 = 4;
/// Flags of a link while up with carrier.
const UP_FLAGS: u32 = (libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_LOWER_UP) as u32;

/// Everything the fake holds, as one value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetState {
    /// Links by index.
    pub links: Vec<Link>,
    /// Addresses, in insertion order.
    pub addresses: Vec<Address>,
    /// Routes, IPv4 then IPv6, each by destination.
    pub routes: Vec<Route>,
    /// Neighbour entries, in insertion order.
    pub neighbours: Vec<Neighbour>,
}

#[derive(Debug)]
struct Tables {
    links: BTreeMap<u32, Link>,
    addresses: Vec<Address>,
    routes: Vec<Route>,
    neighbours: Vec<Neighbour>,
    next_index: u32,
}

impl Tables {
    fn link(&self, index: u32) -> io::Result<&Link> {
        self.links.get(&index).ok_or_else(|| errno(Errno::ENODEV))
    }

    /// Whether `gateway` is reachable through link `oif`: on-link flag, an IPv6 link-local
    /// gateway on a given link, a gateway-less route covering it, or an address whose prefix
    /// covers it (the kernel's connected route).
    fn reachable(&self, gateway: IpAddr, oif: Option<u32>, flags: u32) -> bool {
        let link_local = matches!(gateway, IpAddr::V6(v6) if v6.is_unicast_link_local());
        if flags & RTNH_F_ONLINK != 0 || (link_local && oif.is_some()) {
            return true;
        }
        let on_oif = |index: Option<u32>| oif.is_none() || index == oif;
        self.routes.iter().any(|r| {
            r.gateway.is_none()
                && on_oif(r.oif)
                && r.dest.is_some_and(|(net, len)| covers(net, len, gateway))
        }) || self.addresses.iter().any(|a| {
            on_oif(Some(a.index))
                && self.links.get(&a.index).is_some_and(Link::is_up)
                && covers(a.ip, a.prefix_len, gateway)
        })
    }
}

/// Whether `net/len` contains `ip` (same family only).
fn covers(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Parses and lower-cases a 6-byte `aa:bb:cc:dd:ee:ff` address; `EINVAL` otherwise.
fn parse_mac(mac: &str) -> io::Result<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(mac.to_ascii_lowercase())
    } else {
        Err(errno(Errno::EINVAL))
    }
}

/// Links, addresses, routes and neighbours in memory.
///
/// Starts with `lo` (index 1, down, MTU 65536). A fake VMM adds NICs with
/// [`FakeNetlink::add_link`] (indexes from 2, down) and unplugs them with
/// [`FakeNetlink::remove_link`]. Errors follow rtnetlink:
/// - `ENODEV` for an unknown link index (also a route's `oif`);
/// - `EEXIST` when renaming onto another link's name, `EBUSY` when renaming a link that is up,
///   `EINVAL` for a bad name, MTU (outside 68..=65535), MAC or prefix length;
/// - adds replace: an IPv4 address is identified by (link, IP, prefix), an IPv6 one by
///   (link, IP) (a replace keeps its prefix), a route by (family, destination), a neighbour by
///   (link, IP);
/// - an IPv4 route through a link that is down is `ENETDOWN`; a gateway not covered by a
///   gateway-less route or an address of an up link on the output link is `ENETUNREACH`
///   (unless `RTNH_F_ONLINK`);
/// - a link going down loses its IPv6 addresses and the routes through it;
/// - deleting a missing address is `EADDRNOTAVAIL`, a missing route `ESRCH`, a missing
///   neighbour `ENOENT`.
///
/// Validation happens before any change, so a failed call changes nothing. Of the kernel's
/// own routes, the prefix route of an IPv6 address is listed (`kernel: true`, added and removed
/// with the address, as a real guest showed); the IPv4 connected routes and the local table
/// are not. Routes are listed IPv4 then IPv6, each by destination (the kernel dumps its FIB
/// trees in key order), the default route first.
#[derive(Debug)]
pub struct FakeNetlink {
    faults: Faults,
    tables: Mutex<Tables>,
}

impl FakeNetlink {
    /// Tables holding only `lo`.
    pub fn new(faults: Faults) -> Self {
        let lo = Link {
            index: 1,
            name: "lo".to_owned(),
            mac: "00:00:00:00:00:00".to_owned(),
            mtu: 65536,
            flags: libc::IFF_LOOPBACK as u32,
            kind: None,
        };
        FakeNetlink {
            faults,
            tables: Mutex::new(Tables {
                links: BTreeMap::from([(1, lo)]),
                addresses: Vec::new(),
                routes: Vec::new(),
                neighbours: Vec::new(),
                next_index: 2,
            }),
        }
    }

    /// Plugs in a NIC (down, broadcast/multicast) and returns its index.
    ///
    /// A name already taken is an `AlreadyExists` error and a malformed `mac` an `InvalidInput`
    /// one, each naming the culprit (the tables are unchanged): a fake VMM's input comes from scenario files and must not panic it. Not
    /// counted as a call and never faulted: this is the VMM's side, not the agent's.
    pub fn add_link(&self, name: &str, mac: &str, mtu: u32) -> io::Result<u32> {
        let mac = parse_mac(mac).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad MAC address {mac:?}"),
            )
        })?;
        let mut tables = lock(&self.tables);
        if tables.links.values().any(|l| l.name == name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a link is already called {name:?}"),
            ));
        }
        let index = tables.next_index;
        tables.next_index += 1;
        tables.links.insert(
            index,
            Link {
                index,
                name: name.to_owned(),
                mac,
                mtu,
                flags: (libc::IFF_BROADCAST | libc::IFF_MULTICAST) as u32,
                kind: None,
            },
        );
        Ok(index)
    }

    /// Unplugs link `index`, with its addresses, routes and neighbours. Returns whether it
    /// existed.
    pub fn remove_link(&self, index: u32) -> bool {
        let mut tables = lock(&self.tables);
        if tables.links.remove(&index).is_none() {
            return false;
        }
        tables.addresses.retain(|a| a.index != index);
        tables.routes.retain(|r| r.oif != Some(index));
        tables.neighbours.retain(|n| n.index != index);
        true
    }

    /// A copy of every table (not counted as a call; never faulted).
    pub fn snapshot(&self) -> NetState {
        let tables = lock(&self.tables);
        NetState {
            links: tables.links.values().cloned().collect(),
            addresses: tables.addresses.clone(),
            routes: ordered_routes(&tables.routes),
            neighbours: tables.neighbours.clone(),
        }
    }

    /// Link `index`, if present (not counted as a call).
    pub fn link(&self, index: u32) -> Option<Link> {
        lock(&self.tables).links.get(&index).cloned()
    }
}

fn ordered_routes(routes: &[Route]) -> Vec<Route> {
    let mut out = routes.to_vec();
    // Stable: routes to one destination keep their insertion order.
    out.sort_by_key(|r| (r.ipv6, r.dest));
    out
}

/// The prefix route the kernel adds with an IPv6 address (none for a /128).
fn prefix_route(addr: &Address) -> Option<Route> {
    let IpAddr::V6(ip) = addr.ip else {
        return None;
    };
    if addr.prefix_len >= 128 {
        return None;
    }
    let mask = u128::MAX
        .checked_shl(128 - u32::from(addr.prefix_len))
        .unwrap_or(0);
    let net = IpAddr::V6((u128::from(ip) & mask).into());
    Some(Route {
        dest: Some((net, addr.prefix_len)),
        gateway: None,
        oif: Some(addr.index),
        source: None,
        scope: 0,
        mtu: 0,
        flags: 0,
        ipv6: true,
        kernel: true,
    })
}

#[async_trait]
impl Netlink for FakeNetlink {
    async fn links(&self) -> io::Result<Vec<Link>> {
        self.faults.check(Op::Links)?;
        Ok(lock(&self.tables).links.values().cloned().collect())
    }

    async fn set_link(&self, index: u32, update: &LinkUpdate) -> io::Result<()> {
        self.faults.check(Op::SetLink)?;
        let mut tables = lock(&self.tables);
        let link = tables.link(index)?;
        if let Some(name) = &update.name {
            let bad = name.is_empty() || name == "." || name == "..";
            if bad || name.len() > MAX_NAME || name.contains(['/', ':', ' ', '\t', '\n']) {
                return Err(errno(Errno::EINVAL));
            }
            if *name != link.name {
                if tables.links.values().any(|l| l.name == *name) {
                    return Err(errno(Errno::EEXIST));
                }
                if link.is_up() {
                    return Err(errno(Errno::EBUSY));
                }
            }
        }
        if update
            .mtu
            .is_some_and(|m| !(MIN_MTU..=MAX_MTU).contains(&m))
        {
            return Err(errno(Errno::EINVAL));
        }
        let mac = update.mac.as_deref().map(parse_mac).transpose()?;
        let link = tables
            .links
            .get_mut(&index)
            .ok_or_else(|| errno(Errno::ENODEV))?;
        if let Some(name) = &update.name {
            link.name.clone_from(name);
        }
        if let Some(mtu) = update.mtu {
            link.mtu = mtu;
        }
        if let Some(mac) = mac {
            link.mac = mac;
        }
        let going_down = update.up == Some(false) && link.is_up();
        match update.up {
            Some(true) => link.flags |= UP_FLAGS,
            Some(false) => link.flags &= !UP_FLAGS,
            None => {}
        }
        match update.arp {
            Some(true) => link.flags &= !(libc::IFF_NOARP as u32),
            Some(false) => link.flags |= libc::IFF_NOARP as u32,
            None => {}
        }
        if going_down {
            // As the kernel (with the default keep_addr_on_down=0): a link going down loses
            // its IPv6 addresses and every route through it.
            tables
                .addresses
                .retain(|a| a.index != index || a.ip.is_ipv4());
            tables.routes.retain(|r| r.oif != Some(index));
        }
        Ok(())
    }

    async fn addresses(&self) -> io::Result<Vec<Address>> {
        self.faults.check(Op::Addresses)?;
        Ok(lock(&self.tables).addresses.clone())
    }

    async fn add_address(&self, addr: &Address) -> io::Result<()> {
        self.faults.check(Op::AddAddress)?;
        let mut tables = lock(&self.tables);
        tables.link(addr.index)?;
        if addr.prefix_len > max_prefix(addr.ip) {
            return Err(errno(Errno::EINVAL));
        }
        // As the kernel: an IPv4 address is (link, address, prefix), so the same address with
        // another prefix is a second one; an IPv6 address is (link, address), and a replace
        // keeps the prefix it was added with.
        let exists = tables.addresses.iter().any(|a| {
            a.index == addr.index
                && a.ip == addr.ip
                && (addr.ip.is_ipv6() || a.prefix_len == addr.prefix_len)
        });
        if !exists {
            tables.addresses.push(addr.clone());
            if let Some(route) = prefix_route(addr)
                && !tables.routes.iter().any(|r| r.ipv6 && r.dest == route.dest)
            {
                tables.routes.push(route);
            }
        }
        Ok(())
    }

    async fn del_address(&self, addr: &Address) -> io::Result<()> {
        self.faults.check(Op::DelAddress)?;
        let mut tables = lock(&self.tables);
        tables.link(addr.index)?;
        let pos = tables
            .addresses
            .iter()
            .position(|a| {
                a.index == addr.index && a.ip == addr.ip && a.prefix_len == addr.prefix_len
            })
            .ok_or_else(|| errno(Errno::EADDRNOTAVAIL))?;
        tables.addresses.remove(pos);
        if let Some(route) = prefix_route(addr) {
            tables
                .routes
                .retain(|r| !(r.kernel && r.oif == route.oif && r.dest == route.dest));
        }
        Ok(())
    }

    async fn routes(&self) -> io::Result<Vec<Route>> {
        self.faults.check(Op::Routes)?;
        Ok(ordered_routes(&lock(&self.tables).routes))
    }

    async fn add_route(&self, route: &Route) -> io::Result<()> {
        self.faults.check(Op::AddRoute)?;
        let mut tables = lock(&self.tables);
        if let Some((net, len)) = route.dest
            && (len > max_prefix(net) || net.is_ipv6() != route.ipv6)
        {
            return Err(errno(Errno::EINVAL));
        }
        if let Some(oif) = route.oif {
            let link = tables.link(oif)?;
            if !route.ipv6 && !link.is_up() {
                return Err(errno(Errno::ENETDOWN));
            }
        }
        if let Some(gw) = route.gateway {
            if gw.is_ipv6() != route.ipv6 {
                return Err(errno(Errno::EINVAL));
            }
            if !tables.reachable(gw, route.oif, route.flags) {
                return Err(errno(Errno::ENETUNREACH));
            }
        }
        match tables
            .routes
            .iter_mut()
            .find(|r| r.ipv6 == route.ipv6 && r.dest == route.dest)
        {
            Some(existing) => *existing = route.clone(),
            None => tables.routes.push(route.clone()),
        }
        Ok(())
    }

    async fn del_route(&self, route: &Route) -> io::Result<()> {
        self.faults.check(Op::DelRoute)?;
        let mut tables = lock(&self.tables);
        let pos = tables
            .routes
            .iter()
            .position(|r| {
                r.ipv6 == route.ipv6
                    && r.dest == route.dest
                    && (route.gateway.is_none() || r.gateway == route.gateway)
                    && (route.oif.is_none() || r.oif == route.oif)
            })
            .ok_or_else(|| errno(Errno::ESRCH))?;
        tables.routes.remove(pos);
        Ok(())
    }

    async fn neighbours(&self) -> io::Result<Vec<Neighbour>> {
        self.faults.check(Op::Neighbours)?;
        Ok(lock(&self.tables).neighbours.clone())
    }

    async fn del_neighbour(&self, neigh: &Neighbour) -> io::Result<()> {
        self.faults.check(Op::DelNeighbour)?;
        let mut tables = lock(&self.tables);
        tables.link(neigh.index)?;
        let pos = tables
            .neighbours
            .iter()
            .position(|n| n.index == neigh.index && n.ip == neigh.ip)
            .ok_or_else(|| errno(Errno::ENOENT))?;
        tables.neighbours.remove(pos);
        Ok(())
    }

    async fn add_neighbour(&self, neigh: &Neighbour) -> io::Result<()> {
        self.faults.check(Op::AddNeighbour)?;
        let mut tables = lock(&self.tables);
        tables.link(neigh.index)?;
        let lladdr = neigh.lladdr.as_deref().map(parse_mac).transpose()?;
        let entry = Neighbour {
            lladdr,
            ..neigh.clone()
        };
        match tables
            .neighbours
            .iter_mut()
            .find(|n| n.index == neigh.index && n.ip == neigh.ip)
        {
            Some(existing) => *existing = entry,
            None => tables.neighbours.push(entry),
        }
        Ok(())
    }
}
