//! The readiness barrier: the start work the agent defers past listening, and the RPCs that
//! wait for it.

use std::sync::Arc;

use tokio::sync::watch;

/// Where the deferred start work is.
#[derive(Clone, Debug)]
enum State {
    Pending,
    Ready,
    Failed(Arc<str>),
}

/// The deferred start work failed: what every RPC waiting for it is told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the agent's start failed: {0}")]
pub struct StartFailed(Arc<str>);

/// Whether the start work deferred past listening is done. Clones share one state, settled
/// once: the first of [`Readiness::set_ready`] and [`Readiness::set_failed`] wins.
#[derive(Clone, Debug)]
pub struct Readiness {
    state: Arc<watch::Sender<State>>,
}

impl Readiness {
    /// Nothing deferred: ready already.
    pub fn ready() -> Self {
        Self::with(State::Ready)
    }

    /// Deferred start work still to be done.
    pub fn pending() -> Self {
        Self::with(State::Pending)
    }

    fn with(state: State) -> Self {
        let (state, _) = watch::channel(state);
        Readiness {
            state: Arc::new(state),
        }
    }

    /// The deferred work is done.
    pub fn set_ready(&self) {
        self.settle(State::Ready);
    }

    /// The deferred work failed, for `reason`.
    pub fn set_failed(&self, reason: &str) {
        self.settle(State::Failed(reason.into()));
    }

    fn settle(&self, outcome: State) {
        self.state.send_if_modified(|state| match state {
            State::Pending => {
                *state = outcome;
                true
            }
            State::Ready | State::Failed(_) => false,
        });
    }

    /// None while pending; then how the deferred work ended.
    pub fn outcome(&self) -> Option<Result<(), StartFailed>> {
        outcome(&self.state.borrow())
    }

    /// Waits until the deferred work has ended: at once when it has.
    pub async fn wait(&self) -> Result<(), StartFailed> {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so `wait_for` can only end with the state settled.
        match rx.wait_for(|state| !matches!(state, State::Pending)).await {
            Ok(state) => outcome(&state).unwrap_or(Ok(())),
            Err(_) => Err(StartFailed("the readiness state was dropped".into())),
        }
    }
}

fn outcome(state: &State) -> Option<Result<(), StartFailed>> {
    match state {
        State::Pending => None,
        State::Ready => Some(Ok(())),
        State::Failed(reason) => Some(Err(StartFailed(reason.clone()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_is_released_when_the_work_ends_and_the_first_outcome_stays() {
        let ready = Readiness::pending();
        assert_eq!(ready.outcome(), None);
        let waiter = tokio::spawn({
            let ready = ready.clone();
            async move { ready.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        ready.set_failed("cgroup mounts: EPERM");
        ready.set_ready();
        let failed = waiter.await.expect("waiter ran");
        assert_eq!(
            failed.expect_err("failed").to_string(),
            "the agent's start failed: cgroup mounts: EPERM"
        );
        assert!(matches!(ready.outcome(), Some(Err(_))));
        assert_eq!(Readiness::ready().wait().await, Ok(()));
    }
}
