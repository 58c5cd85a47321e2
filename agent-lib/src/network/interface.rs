//! UpdateInterface and ListInterfaces.
//!
//! UpdateInterface finds the NIC (by hardware address; else by its PCI netdev or its name, and
//! then gives it the wanted address, as Kata does for VM templates and VFIO NICs), and then,
//! in this order: brings it down (only if it is up and must be renamed or given a new hardware
//! address: a link going down loses its IPv6 addresses and routes), sets its hardware address,
//! adds its addresses, renames it (moving a link that holds the wanted name aside and giving
//! it the NIC's old name), sets MTU, ARP and up. Every change is journalled; if a step fails,
//! the changes already made are undone in reverse order.

use std::collections::BTreeMap;
use std::path::Path;

use super::types::{InterfaceConfig, InterfaceInfo, IpNet, check_ifname};
use super::undo::{Journal, Undo};
use super::{Network, NetworkError};
use crate::device::net_pci;
use crate::host::{Address, Link, LinkUpdate, Netlink};

/// The smallest MTU accepted (IPv4's minimum, `ETH_MIN_MTU`).
pub const MIN_MTU: u32 = 68;
/// The largest MTU accepted (the loopback's).
pub const MAX_MTU: u32 = 65536;

/// `/proc/sys/net/ipv6/conf/{all,default}/disable_ipv6`.
const DISABLE_IPV6: [&str; 2] = [
    "/proc/sys/net/ipv6/conf/all/disable_ipv6",
    "/proc/sys/net/ipv6/conf/default/disable_ipv6",
];

impl Network {
    /// Configures one NIC as `config` asks and returns it as the kernel now reports it. A
    /// NIC given by PCI path is waited for (up to `agent.hotplug_timeout`) before anything
    /// else. On failure nothing is left changed.
    pub async fn update_interface(
        &self,
        config: &InterfaceConfig,
    ) -> Result<InterfaceInfo, NetworkError> {
        check_ifname("interface name", &config.name)?;
        if let Some(mtu) = config.mtu
            && !(MIN_MTU..=MAX_MTU).contains(&mtu)
        {
            return Err(NetworkError::invalid(
                "mtu",
                mtu.to_string(),
                format!("outside {MIN_MTU}..={MAX_MTU}"),
            ));
        }
        let pci_netdev =
            match &config.pci_path {
                Some(path) => Some(net_pci(&self.devices, path).await.map_err(|source| {
                    NetworkError::Device {
                        path: path.to_string(),
                        source,
                    }
                })?),
                None => None,
            };
        let ipv6 = self.ipv6_enabled();
        let nl = &*self.host.netlink;
        let _updates = self.updates.lock().await;
        let links = nl.links().await.map_err(NetworkError::step("list links"))?;
        let link = find_link(&links, config, pci_netdev.as_deref())?.clone();
        let mut journal = Journal::default();
        let plan = Plan {
            nl,
            links: &links,
            link: &link,
            config,
        };
        // Reading the result back is part of the request: if it fails, the caller learns
        // nothing of the new state, so the change is undone too.
        let result = match plan.apply(&mut journal, ipv6).await {
            Ok(()) => read_interface(nl, link.index).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(info) => {
                tracing::info!(interface = %config.name, index = link.index, "interface updated");
                Ok(info)
            }
            Err(error) => {
                journal.rollback(nl).await;
                Err(error)
            }
        }
    }

    /// Every link with its addresses, by index.
    pub async fn list_interfaces(&self) -> Result<Vec<InterfaceInfo>, NetworkError> {
        let nl = &*self.host.netlink;
        let mut links = nl.links().await.map_err(NetworkError::step("list links"))?;
        links.sort_by_key(|l| l.index);
        let addresses = nl
            .addresses()
            .await
            .map_err(NetworkError::step("list addresses"))?;
        let mut by_index: BTreeMap<u32, Vec<IpNet>> = BTreeMap::new();
        for a in &addresses {
            by_index.entry(a.index).or_default().push(IpNet {
                ip: a.ip,
                prefix_len: a.prefix_len,
            });
        }
        Ok(links
            .iter()
            .map(|l| info(l, by_index.remove(&l.index).unwrap_or_default()))
            .collect())
    }

    /// Whether IPv6 addresses can be added: `disable_ipv6` reads 0 for `all` or `default`.
    /// Without those files (no IPv6 in the guest kernel) IPv6 addresses are skipped, as Kata.
    fn ipv6_enabled(&self) -> bool {
        DISABLE_IPV6.iter().any(|path| {
            self.host
                .sysfs
                .read_string(Path::new(path))
                .is_ok_and(|v| v == "0")
        })
    }
}

/// The link `config` is about: by hardware address, else by the PCI netdev, else by name.
fn find_link<'a>(
    links: &'a [Link],
    config: &InterfaceConfig,
    pci_netdev: Option<&str>,
) -> Result<&'a Link, NetworkError> {
    if let Some(mac) = &config.mac
        && let Some(link) = links.iter().find(|l| l.mac == mac.as_str())
    {
        return Ok(link);
    }
    pci_netdev
        .into_iter()
        .chain([config.name.as_str()])
        .find_map(|name| links.iter().find(|l| l.name == name))
        .ok_or_else(|| {
            let mac = config
                .mac
                .as_ref()
                .map_or("-".to_owned(), |m| m.to_string());
            NetworkError::LinkNotFound(format!(
                "no link with hardware address {mac}{} or name {}",
                pci_netdev.map_or(String::new(), |n| format!(", PCI netdev {n}")),
                config.name
            ))
        })
}

/// One UpdateInterface on the links as they were when it started.
struct Plan<'a> {
    nl: &'a dyn Netlink,
    links: &'a [Link],
    link: &'a Link,
    config: &'a InterfaceConfig,
}

impl Plan<'_> {
    async fn apply(&self, journal: &mut Journal, ipv6: bool) -> Result<(), NetworkError> {
        let (link, config) = (self.link, self.config);
        let new_mac = config.mac.as_ref().filter(|m| link.mac != m.as_str());
        if link.is_up() && (new_mac.is_some() || link.name != config.name) {
            self.bring_down(journal, link).await?;
        }
        if let Some(mac) = new_mac {
            let (new, old) = (mac_update(mac.as_str()), mac_update(&link.mac));
            self.set(journal, link, new, old, "set the hardware address of")
                .await?;
        }
        let addresses = self
            .nl
            .addresses()
            .await
            .map_err(NetworkError::step("list addresses"))?;
        for net in &config.addresses {
            if net.is_ipv6() && !ipv6 {
                tracing::debug!(address = %net, "IPv6 is disabled in the guest: address skipped");
                continue;
            }
            self.add_address(journal, &addresses, net).await?;
        }
        let moved = if link.name != config.name {
            self.rename(journal).await?
        } else {
            None
        };
        let last = LinkUpdate {
            mtu: config.mtu,
            arp: Some(!config.noarp),
            up: Some(true),
            ..LinkUpdate::default()
        };
        let restore = LinkUpdate {
            mtu: config.mtu.map(|_| link.mtu),
            arp: Some(link.flags & libc::IFF_NOARP as u32 == 0),
            up: Some(false),
            ..LinkUpdate::default()
        };
        self.set(journal, link, last, restore, "set MTU, ARP and up on")
            .await?;
        if let Some((other, temp)) = moved {
            let (new, old) = (name_update(&link.name), name_update(&temp));
            self.set(journal, &other, new, old, "give the old name to")
                .await?;
            if other.is_up() {
                self.set(journal, &other, up(true), up(false), "bring up")
                    .await?;
            }
        }
        Ok(())
    }

    /// Renames the NIC; a link holding the wanted name is brought down and moved to a
    /// temporary name first, and returned with it.
    async fn rename(&self, journal: &mut Journal) -> Result<Option<(Link, String)>, NetworkError> {
        let (link, wanted) = (self.link, &self.config.name);
        let holder = self
            .links
            .iter()
            .find(|l| l.name == *wanted && l.index != link.index);
        let moved = match holder {
            Some(other) => {
                if other.is_up() {
                    self.bring_down(journal, other).await?;
                }
                let temp = temporary_name(self.links, other.index);
                let (new, old) = (name_update(&temp), name_update(&other.name));
                self.set(journal, other, new, old, "move aside").await?;
                Some((other.clone(), temp))
            }
            None => None,
        };
        let (new, old) = (name_update(wanted), name_update(&link.name));
        self.set(journal, link, new, old, "rename").await?;
        Ok(moved)
    }

    /// Adds `net` to the NIC unless it is there already. An IPv6 address present with
    /// another prefix is replaced (the kernel would keep the old prefix otherwise).
    async fn add_address(
        &self,
        journal: &mut Journal,
        addresses: &[Address],
        net: &IpNet,
    ) -> Result<(), NetworkError> {
        let index = self.link.index;
        let wanted = Address {
            index,
            ip: net.ip,
            prefix_len: net.prefix_len,
        };
        if addresses.contains(&wanted) {
            return Ok(());
        }
        let stale = addresses
            .iter()
            .find(|a| a.index == index && a.ip == net.ip && net.is_ipv6());
        if let Some(stale) = stale {
            self.nl
                .del_address(stale)
                .await
                .map_err(NetworkError::step(format!(
                    "remove {}/{} from {}",
                    stale.ip, stale.prefix_len, self.link.name
                )))?;
            journal.push(Undo::AddAddress(stale.clone()));
        }
        self.nl
            .add_address(&wanted)
            .await
            .map_err(NetworkError::step(format!(
                "add {net} to {}",
                self.link.name
            )))?;
        journal.push(Undo::DelAddress(wanted));
        Ok(())
    }

    /// Brings `link` down for a rename or a new hardware address. The kernel then drops the
    /// link's IPv6 addresses and every route through it: they are journalled first, so an
    /// undo brings the link up and puts them back (after the success of the request they are
    /// gone, as with Kata's agent).
    async fn bring_down(&self, journal: &mut Journal, link: &Link) -> Result<(), NetworkError> {
        let routes = self
            .nl
            .routes()
            .await
            .map_err(NetworkError::step("list routes"))?;
        let addresses = self
            .nl
            .addresses()
            .await
            .map_err(NetworkError::step("list addresses"))?;
        self.nl
            .set_link(link.index, &up(false))
            .await
            .map_err(NetworkError::step(format!(
                "bring down {} (index {})",
                link.name, link.index
            )))?;
        // Undone last first: up, then the addresses, then the routes through them (routes the
        // kernel made come back with their addresses).
        for route in routes
            .into_iter()
            .filter(|r| r.oif == Some(link.index) && !r.kernel)
        {
            journal.push(Undo::AddRoute(route));
        }
        for address in addresses.into_iter().filter(|a| a.index == link.index) {
            journal.push(Undo::AddAddress(address));
        }
        journal.push(Undo::SetLink(link.index, up(true)));
        Ok(())
    }

    /// Applies `update` to `link`, journalling `undo`.
    async fn set(
        &self,
        journal: &mut Journal,
        link: &Link,
        update: LinkUpdate,
        undo: LinkUpdate,
        what: &str,
    ) -> Result<(), NetworkError> {
        self.nl
            .set_link(link.index, &update)
            .await
            .map_err(NetworkError::step(format!(
                "{what} {} (index {})",
                link.name, link.index
            )))?;
        journal.push(Undo::SetLink(link.index, undo));
        Ok(())
    }
}

fn up(up: bool) -> LinkUpdate {
    LinkUpdate {
        up: Some(up),
        ..LinkUpdate::default()
    }
}

fn name_update(name: &str) -> LinkUpdate {
    LinkUpdate {
        name: Some(name.to_owned()),
        ..LinkUpdate::default()
    }
}

fn mac_update(mac: &str) -> LinkUpdate {
    LinkUpdate {
        mac: Some(mac.to_owned()),
        ..LinkUpdate::default()
    }
}

/// A name no link has: `tmp<index>`, else `tmp<index>_<n>`.
fn temporary_name(links: &[Link], index: u32) -> String {
    let taken = |name: &str| links.iter().any(|l| l.name == name);
    let base = format!("tmp{index}");
    if !taken(&base) {
        return base;
    }
    (1u32..)
        .map(|n| format!("tmp{index}_{n}"))
        .find(|name| !taken(name))
        .unwrap_or(base)
}

fn info(link: &Link, addresses: Vec<IpNet>) -> InterfaceInfo {
    InterfaceInfo {
        name: link.name.clone(),
        mac: link.mac.clone(),
        mtu: link.mtu,
        addresses,
        kind: link.kind.clone().unwrap_or_default(),
        flags: link.flags,
    }
}

/// Link `index` with its addresses, read back from the kernel.
async fn read_interface(nl: &dyn Netlink, index: u32) -> Result<InterfaceInfo, NetworkError> {
    let links = nl
        .links()
        .await
        .map_err(NetworkError::step("read the interface back"))?;
    let link = links
        .iter()
        .find(|l| l.index == index)
        .ok_or_else(|| NetworkError::LinkNotFound(format!("index {index} vanished")))?;
    let addresses = nl
        .addresses()
        .await
        .map_err(NetworkError::step("read the addresses back"))?
        .into_iter()
        .filter(|a| a.index == index)
        .map(|a| IpNet {
            ip: a.ip,
            prefix_len: a.prefix_len,
        })
        .collect();
    Ok(info(link, addresses))
}
