//! The `Netlink` seam: links, addresses, routes and neighbours (rtnetlink).

use std::io;
use std::net::IpAddr;

use async_trait::async_trait;

/// A network link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, lower-case `aa:bb:cc:dd:ee:ff`; empty when the link has none.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// `IFF_*` flags as the kernel reports them.
    pub flags: u32,
    /// Link kind (`veth`, `bridge`...), when the kernel reports one.
    pub kind: Option<String>,
}

impl Link {
    /// Whether the link is administratively up (`IFF_UP`).
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }
}

/// Changes to apply to a link; `None` leaves a property alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkUpdate {
    /// New name.
    pub name: Option<String>,
    /// New MTU.
    pub mtu: Option<u32>,
    /// New hardware address (`aa:bb:cc:dd:ee:ff`).
    pub mac: Option<String>,
    /// Up (`true`) or down (`false`).
    pub up: Option<bool>,
    /// ARP on (`true`) or `IFF_NOARP` (`false`).
    pub arp: Option<bool>,
}

/// An address on a link.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub ip: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// A route in the main table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination network; `None` is the default route.
    pub dest: Option<(IpAddr, u8)>,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Preferred source address.
    pub source: Option<IpAddr>,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// Route MTU metric; 0 when unset.
    pub mtu: u32,
    /// `RTNH_F_*` flags.
    pub flags: u32,
    /// Whether this is an IPv6 route.
    pub ipv6: bool,
    /// Whether the kernel made it (protocol `kernel`: the prefix route of an address, IPv6
    /// link-local routes). Such routes come and go with addresses; ignored when adding.
    pub kernel: bool,
}

/// An ARP/NDP neighbour entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Neighbour {
    /// Interface index.
    pub index: u32,
    /// The neighbour's IP address.
    pub ip: IpAddr,
    /// The neighbour's hardware address, if known.
    pub lladdr: Option<String>,
    /// `NUD_*` state.
    pub state: u16,
    /// `NTF_*` flags.
    pub flags: u8,
}

/// rtnetlink operations on the agent's network namespace.
#[async_trait]
pub trait Netlink: Send + Sync {
    /// Every link.
    async fn links(&self) -> io::Result<Vec<Link>>;

    /// Applies `update` to the link with `index`.
    async fn set_link(&self, index: u32, update: &LinkUpdate) -> io::Result<()>;

    /// Every address of every link.
    async fn addresses(&self) -> io::Result<Vec<Address>>;

    /// Adds (or replaces) an address.
    async fn add_address(&self, addr: &Address) -> io::Result<()>;

    /// Removes an address.
    async fn del_address(&self, addr: &Address) -> io::Result<()>;

    /// Routes of the main table, IPv4 then IPv6.
    async fn routes(&self) -> io::Result<Vec<Route>>;

    /// Adds (or replaces) a route in the main table.
    async fn add_route(&self, route: &Route) -> io::Result<()>;

    /// Removes a route from the main table.
    async fn del_route(&self, route: &Route) -> io::Result<()>;

    /// Every neighbour entry (IPv4 and IPv6) of every link.
    async fn neighbours(&self) -> io::Result<Vec<Neighbour>>;

    /// Adds (or replaces) a neighbour entry.
    async fn add_neighbour(&self, neigh: &Neighbour) -> io::Result<()>;

    /// Removes the neighbour entry for `neigh.ip` on link `neigh.index`.
    async fn del_neighbour(&self, neigh: &Neighbour) -> io::Result<()>;

    /// The link called `name`.
    async fn link_by_name(&self, name: &str) -> io::Result<Link> {
        self.links()
            .await?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no link {name}")))
    }
}
