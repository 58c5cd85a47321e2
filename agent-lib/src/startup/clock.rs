//! The agent's start, timed step by step from the moment the process began.

use std::fmt;
use std::time::{Duration, Instant};

/// Times the steps of the agent's start. Made first thing in `main`; each [`StartClock::step`]
/// records how long the step just finished took, and the whole list is logged in one line
/// (the subscriber is not installed yet when the first steps run).
#[derive(Debug)]
pub struct StartClock {
    origin: Instant,
    last: Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl StartClock {
    /// A clock started now.
    pub fn new() -> Self {
        Self::since(Instant::now())
    }

    /// A clock started at `origin`.
    pub fn since(origin: Instant) -> Self {
        StartClock {
            origin,
            last: Instant::now(),
            steps: Vec::new(),
        }
    }

    /// Records `name` as the step that ran from the previous mark to now.
    pub fn step(&mut self, name: &'static str) {
        let now = Instant::now();
        self.steps.push((name, now - self.last));
        self.last = now;
    }

    /// When the clock started.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The time since the clock started.
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Microseconds since the clock started, for a log field.
    pub fn elapsed_us(&self) -> u64 {
        u64::try_from(self.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The steps recorded so far, in order.
    pub fn steps(&self) -> &[(&'static str, Duration)] {
        &self.steps
    }
}

impl Default for StartClock {
    fn default() -> Self {
        Self::new()
    }
}

/// `base_mounts=1234us config=56us ...`: each step and its time in microseconds.
impl fmt::Display for StartClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, took)) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={}us", took.as_micros())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_listed_in_order_with_their_time() {
        let mut clock = StartClock::new();
        clock.step("first");
        std::thread::sleep(Duration::from_millis(2));
        clock.step("second");
        let names: Vec<&str> = clock.steps().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["first", "second"]);
        assert!(clock.steps()[1].1 >= Duration::from_millis(2));
        assert!(clock.elapsed() >= clock.steps()[1].1);
        let text = clock.to_string();
        assert!(
            text.starts_with("first=") && text.contains(" second="),
            "{text}"
        );
        assert!(text.ends_with("us"), "{text}");
    }
}
