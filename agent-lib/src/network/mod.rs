//! The guest's network: interfaces, routes and neighbours over the
//! [`Netlink`](crate::host::Netlink) seam, and the packet filter through the iptables programs.
//!
//! Requests that change the network are serialised by one lock of this subsystem (a rename
//! swap or a route added through a link being renamed must not interleave); it is never held
//! while waiting for a hot-plugged NIC, and no other subsystem waits on it. Each change is
//! journalled and undone if a later step of the same request fails.

mod error;
mod interface;
mod iptables;
mod neighbours;
mod routes;
mod types;
mod undo;

pub use error::NetworkError;
pub use interface::{MAX_MTU, MIN_MTU};
pub use iptables::{IpFamily, MAX_RULES};
pub use neighbours::NUD_PERMANENT;
pub use types::{
    InterfaceConfig, InterfaceInfo, IpNet, MAX_IFNAME, MacAddr, NeighbourConfig, RouteConfig,
    check_ifname, max_prefix, parse_ip,
};

use tokio::sync::Mutex;

use crate::device::DeviceContext;
use crate::host::Host;

/// The network subsystem of one agent.
#[derive(Debug)]
pub struct Network {
    host: Host,
    devices: DeviceContext,
    updates: Mutex<()>,
}

impl Network {
    /// The network of `host`; NICs given by PCI path are waited for through `devices`.
    pub fn new(host: Host, devices: DeviceContext) -> Self {
        Network {
            host,
            devices,
            updates: Mutex::new(()),
        }
    }
}
