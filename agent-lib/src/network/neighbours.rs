//! AddARPNeighbors: static ARP/NDP entries.

use super::types::NeighbourConfig;
use super::undo::{Journal, Undo};
use super::{Network, NetworkError};
use crate::host::Neighbour;

/// `NUD_PERMANENT`.
pub const NUD_PERMANENT: u16 = 0x80;

impl Network {
    /// Adds (or replaces) each neighbour entry; a state of 0 is `NUD_PERMANENT`. Every
    /// interface is looked up, and every permanent entry checked for a hardware address,
    /// before anything changes; if an add fails, the entries added or replaced before it are
    /// put back as they were.
    pub async fn add_arp_neighbours(
        &self,
        neighbours: &[NeighbourConfig],
    ) -> Result<(), NetworkError> {
        let nl = &*self.host.netlink;
        let _updates = self.updates.lock().await;
        let links = nl.links().await.map_err(NetworkError::step("list links"))?;
        let mut wanted = Vec::with_capacity(neighbours.len());
        for n in neighbours {
            let link = links.iter().find(|l| l.name == n.device).ok_or_else(|| {
                NetworkError::LinkNotFound(format!("neighbour {} device {:?}", n.ip, n.device))
            })?;
            let state = if n.state == 0 { NUD_PERMANENT } else { n.state };
            if state & NUD_PERMANENT != 0 && n.lladdr.is_none() {
                return Err(NetworkError::invalid(
                    "lladdr",
                    "",
                    format!("the permanent entry for {} needs a hardware address", n.ip),
                ));
            }
            wanted.push(Neighbour {
                index: link.index,
                ip: n.ip,
                lladdr: n.lladdr.as_ref().map(|m| m.as_str().to_owned()),
                state,
                flags: n.flags,
            });
        }
        let existing = nl
            .neighbours()
            .await
            .map_err(NetworkError::step("list neighbours"))?;
        let mut journal = Journal::default();
        for neigh in wanted {
            let previous = existing
                .iter()
                .find(|e| e.index == neigh.index && e.ip == neigh.ip)
                .cloned();
            if let Err(e) = nl.add_neighbour(&neigh).await {
                journal.rollback(nl).await;
                return Err(NetworkError::Step {
                    step: format!("add neighbour {} on index {}", neigh.ip, neigh.index),
                    source: e,
                });
            }
            journal.push(match previous {
                Some(previous) => Undo::AddNeighbour(previous),
                None => Undo::DelNeighbour(neigh),
            });
        }
        Ok(())
    }
}
