//! [`Journal`]: the netlink changes a network RPC made so far, undone in reverse order when a
//! later step fails, so a failed request leaves links, addresses, routes and neighbours as
//! they were.

use crate::host::{Address, LinkUpdate, Neighbour, Netlink, Route};

/// The inverse of one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Undo {
    /// Set these properties of a link back.
    SetLink(u32, LinkUpdate),
    /// Remove an address that was added.
    DelAddress(Address),
    /// Put back an address that was removed.
    AddAddress(Address),
    /// Remove a route that was added.
    DelRoute(Route),
    /// Put back a route that was replaced or removed.
    AddRoute(Route),
    /// Remove a neighbour entry that was added.
    DelNeighbour(Neighbour),
    /// Put back a neighbour entry that was replaced.
    AddNeighbour(Neighbour),
}

/// The undo list of one request.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    undo: Vec<Undo>,
}

impl Journal {
    /// Records the inverse of a change just made.
    pub(crate) fn push(&mut self, undo: Undo) {
        self.undo.push(undo);
    }

    /// Undoes every recorded change, last first. An undo that fails is logged and the rest
    /// still run: each restores an independent property.
    pub(crate) async fn rollback(self, netlink: &dyn Netlink) {
        for undo in self.undo.into_iter().rev() {
            let result = match &undo {
                Undo::SetLink(index, update) => netlink.set_link(*index, update).await,
                Undo::DelAddress(a) => netlink.del_address(a).await,
                Undo::AddAddress(a) => netlink.add_address(a).await,
                Undo::DelRoute(r) => netlink.del_route(r).await,
                Undo::AddRoute(r) => netlink.add_route(r).await,
                Undo::DelNeighbour(n) => netlink.del_neighbour(n).await,
                Undo::AddNeighbour(n) => netlink.add_neighbour(n).await,
            };
            match result {
                Ok(()) => tracing::debug!(?undo, "network change undone"),
                Err(error) => tracing::warn!(?undo, %error, "undoing a network change failed"),
            }
        }
    }
}
