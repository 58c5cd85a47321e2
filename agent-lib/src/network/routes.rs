//! UpdateRoutes and ListRoutes: the main routing table.

use std::collections::HashMap;

use super::types::{IpNet, RouteConfig};
use super::undo::{Journal, Undo};
use super::{Network, NetworkError};
use crate::host::{Link, Route};

impl Network {
    /// Adds (or replaces) `routes` in the main table, routes without a gateway first (a
    /// gateway is reachable only through them), and returns the whole main table. A route the
    /// kernel reports as existing (`EEXIST`) is taken as done, as Kata does. Every output
    /// interface is looked up before anything changes; if an add (or reading the table
    /// afterwards) fails, the routes added or replaced are put back as they were.
    pub async fn update_routes(
        &self,
        routes: &[RouteConfig],
    ) -> Result<Vec<RouteConfig>, NetworkError> {
        let nl = &*self.host.netlink;
        let _updates = self.updates.lock().await;
        let links = nl.links().await.map_err(NetworkError::step("list links"))?;
        let (direct, via): (Vec<&RouteConfig>, Vec<&RouteConfig>) =
            routes.iter().partition(|r| r.gateway.is_none());
        let wanted = direct
            .into_iter()
            .chain(via)
            .map(|r| to_route(r, &links))
            .collect::<Result<Vec<Route>, NetworkError>>()?;
        let existing = nl
            .routes()
            .await
            .map_err(NetworkError::step("list routes"))?;
        let mut journal = Journal::default();
        for route in wanted {
            let previous = existing
                .iter()
                .find(|r| r.ipv6 == route.ipv6 && r.dest == route.dest)
                .cloned();
            match nl.add_route(&route).await {
                Ok(()) => journal.push(match previous {
                    Some(previous) => Undo::AddRoute(previous),
                    None => Undo::DelRoute(route),
                }),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    tracing::debug!(?route, "route exists");
                }
                Err(e) => {
                    journal.rollback(nl).await;
                    return Err(NetworkError::Step {
                        step: format!("add route {}", describe(&route, &links)),
                        source: e,
                    });
                }
            }
        }
        // The table returned is part of the answer: if it cannot be read, undo.
        match nl.routes().await {
            Ok(table) => Ok(from_routes(table, &links)),
            Err(e) => {
                journal.rollback(nl).await;
                Err(NetworkError::Step {
                    step: "list routes after the update".into(),
                    source: e,
                })
            }
        }
    }

    /// The main table, IPv4 then IPv6, each route with its real destination, gateway and
    /// output interface name.
    pub async fn list_routes(&self) -> Result<Vec<RouteConfig>, NetworkError> {
        let nl = &*self.host.netlink;
        let links = nl.links().await.map_err(NetworkError::step("list links"))?;
        let table = nl
            .routes()
            .await
            .map_err(NetworkError::step("list routes"))?;
        Ok(from_routes(table, &links))
    }
}

/// The seam's route for `config`, its device resolved to an index.
fn to_route(config: &RouteConfig, links: &[Link]) -> Result<Route, NetworkError> {
    let oif = if config.device.is_empty() {
        None
    } else {
        let link = links
            .iter()
            .find(|l| l.name == config.device)
            .ok_or_else(|| NetworkError::LinkNotFound(format!("route device {}", config.device)))?;
        Some(link.index)
    };
    Ok(Route {
        dest: config.dest.map(|d| (d.ip, d.prefix_len)),
        gateway: config.gateway,
        oif,
        source: config.source,
        scope: config.scope,
        mtu: config.mtu,
        flags: config.flags,
        ipv6: config.ipv6,
        kernel: false,
    })
}

fn from_routes(table: Vec<Route>, links: &[Link]) -> Vec<RouteConfig> {
    let names: HashMap<u32, &str> = links.iter().map(|l| (l.index, l.name.as_str())).collect();
    table
        .into_iter()
        .map(|r| RouteConfig {
            dest: r.dest.map(|(ip, prefix_len)| IpNet { ip, prefix_len }),
            gateway: r.gateway,
            device: r
                .oif
                .and_then(|i| names.get(&i))
                .map(|n| (*n).to_owned())
                .unwrap_or_default(),
            source: r.source,
            scope: r.scope,
            ipv6: r.ipv6,
            flags: r.flags,
            mtu: r.mtu,
        })
        .collect()
}

/// `10.0.0.0/8 via 10.0.0.1 dev eth0`, for error messages.
fn describe(route: &Route, links: &[Link]) -> String {
    let mut text = match route.dest {
        Some((ip, len)) => format!("{ip}/{len}"),
        None => "default".to_owned(),
    };
    if let Some(gw) = route.gateway {
        text.push_str(&format!(" via {gw}"));
    }
    if let Some(link) = route.oif.and_then(|i| links.iter().find(|l| l.index == i)) {
        text.push_str(&format!(" dev {}", link.name));
    }
    text
}
