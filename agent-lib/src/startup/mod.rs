//! The agent's start, listener first: it serves as soon as it can, so the host's first Check
//! is answered at once, and the start work no Health call needs runs after, behind the
//! readiness barrier every AgentService call waits for ([`Readiness`]). Each step is timed
//! with a [`StartClock`].
//!
//! [`Readiness`]: crate::ready::Readiness

mod clock;

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

pub use clock::StartClock;

use crate::Agent;
use crate::host::ServerAddr;
use crate::rpc::{self, RpcServer};

/// Serves `agent` on `addr`, then runs `work`, the start work deferred past listening, on a
/// background task, and settles the agent's [`Readiness`] with how it ended.
///
/// Build the agent with [`Agent::with_readiness`] and [`Readiness::pending`]: until `work` is
/// done, Health answers and AgentService calls wait. When it fails (or panics), those calls
/// fail with the reason, the failure is logged and a stop is requested, as DestroySandbox
/// does: whoever runs the agent stops it, and [`Readiness::outcome`] tells why.
///
/// [`Readiness`]: crate::ready::Readiness
/// [`Readiness::pending`]: crate::ready::Readiness::pending
/// [`Readiness::outcome`]: crate::ready::Readiness::outcome
pub async fn serve_first<W, E>(
    agent: Arc<Agent>,
    addr: &ServerAddr,
    work: W,
) -> io::Result<RpcServer>
where
    W: Future<Output = Result<(), E>> + Send + 'static,
    E: Display,
{
    let server = rpc::serve(agent.clone(), addr).await?;
    tokio::spawn(async move {
        let outcome = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err("the deferred start work panicked".to_owned()),
        };
        settle(&agent, outcome);
    });
    Ok(server)
}

fn settle(agent: &Agent, outcome: Result<(), String>) {
    match outcome {
        Ok(()) => agent.readiness().set_ready(),
        Err(reason) => {
            tracing::error!(error = %reason, "deferred start failed: stopping");
            agent.readiness().set_failed(&reason);
            agent.request_stop();
        }
    }
}
