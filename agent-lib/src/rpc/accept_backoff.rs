//! Accept errors without a busy loop: when `accept` fails (`EMFILE`/`ENFILE` at the descriptor
//! limit, `ENOBUFS`, `ENOMEM`...) the listener stays readable, so retrying at once spins a CPU.
//! Failed accepts are logged and retried after a pause that doubles from [`FIRST_PAUSE`] to
//! [`MAX_PAUSE`]; the connections already open are served meanwhile by their own tasks.

use std::time::Duration;

use futures::StreamExt;

use crate::host::Incoming;

/// The pause after the first failed accept.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two accepts while they keep failing.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(1);

/// `incoming` with its errors replaced by pauses (reset by the next accepted connection).
pub(crate) fn with_backoff(incoming: Incoming) -> Incoming {
    futures::stream::unfold(
        (incoming, Duration::ZERO),
        |(mut incoming, mut pause)| async move {
            loop {
                match incoming.next().await? {
                    Ok(conn) => return Some((Ok(conn), (incoming, Duration::ZERO))),
                    Err(e) => {
                        pause = (pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
                        tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64,
                            "accepting a connection failed; pausing before the next accept");
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// `errors` accept failures (EMFILE), then one connection, then the end; counts polls.
    fn failing(errors: usize, polls: Arc<AtomicUsize>) -> Incoming {
        futures::stream::iter(0..=errors)
            .map(move |i| {
                polls.fetch_add(1, Ordering::SeqCst);
                if i < errors {
                    Err(io::Error::from_raw_os_error(libc::EMFILE))
                } else {
                    let (a, _b) = tokio::io::duplex(8);
                    Ok(Box::new(a) as Box<dyn crate::host::Connection>)
                }
            })
            .boxed()
    }

    #[tokio::test(start_paused = true)]
    async fn failed_accepts_pause_instead_of_spinning() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut incoming = with_backoff(failing(1_000, polls.clone()));
        let start = tokio::time::Instant::now();
        let next = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await;
        assert!(next.is_err(), "still pausing after 5 s of errors");
        // 0.1 + 0.2 + 0.4 + 0.8 + 1 + 1 + ... s: about eight accepts in 5 s, not a thousand.
        let tried = polls.load(Ordering::SeqCst);
        assert!((5..=10).contains(&tried), "{tried} accepts in 5 s");
        assert!(start.elapsed() >= Duration::from_secs(5));

        let polls = Arc::new(AtomicUsize::new(0));
        let mut incoming = with_backoff(failing(2, polls.clone()));
        let conn = incoming
            .next()
            .await
            .expect("a connection after the errors");
        assert!(conn.is_ok());
        assert_eq!(polls.load(Ordering::SeqCst), 3);
        assert!(
            incoming.next().await.is_none(),
            "the end of the listener passes through"
        );
    }
}
