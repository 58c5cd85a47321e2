//! The agent's own start as PID 1, read from its JSON log lines on the guest's console.

use std::time::{Duration, SystemTime};

/// The agent's `start steps` line: logged once it listens.
const LISTENING: &str = "start steps";
/// The agent's `deferred start done` line: logged once the start work after listening is done.
const DEFERRED: &str = "deferred start done";

/// How the agent's start went, from its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentStart {
    /// Its first log line to `ttRPC server started`.
    pub log_to_listening: Duration,
    /// Its process start to listening, as the agent measured it.
    pub process_to_listening: Option<Duration>,
    /// Each step to listening and its time, as the agent logged them.
    pub steps: Option<String>,
    /// Its process start to the end of the work deferred past listening.
    pub process_to_ready: Option<Duration>,
    /// Each deferred step and its time.
    pub deferred_steps: Option<String>,
}

impl AgentStart {
    /// `first log line to ttRPC listening 12 ms (process start to listening 30 ms, to ready 80 ms)`.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "first log line to ttRPC listening {} ms",
            self.log_to_listening.as_millis()
        );
        let mut more = Vec::new();
        if let Some(d) = self.process_to_listening {
            more.push(format!("process start to listening {} ms", d.as_millis()));
        }
        if let Some(d) = self.process_to_ready {
            more.push(format!("to ready {} ms", d.as_millis()));
        }
        if !more.is_empty() {
            text.push_str(&format!(" ({})", more.join(", ")));
        }
        text
    }
}

/// The agent's start from the console: its first log line's `ts` to the `ttRPC server started`
/// line's, plus what its `start steps` and `deferred start done` lines say. None when it never
/// listened.
pub fn agent_start(console: &str) -> Option<AgentStart> {
    let lines: Vec<serde_json::Value> = console
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("pid").and_then(|p| p.as_str()) == Some("1"))
        .collect();
    let ts = |v: &serde_json::Value| -> Option<SystemTime> {
        humantime::parse_rfc3339(v.get("ts")?.as_str()?).ok()
    };
    let with_msg = |msg: &str| {
        lines
            .iter()
            .find(|v| v.get("msg").and_then(|m| m.as_str()) == Some(msg))
    };
    let first = lines.iter().find_map(ts)?;
    let ready = ts(with_msg("ttRPC server started")?)?;
    let micros = |v: &serde_json::Value| {
        v.get("since_start_us")
            .and_then(|n| {
                n.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| n.as_u64())
            })
            .map(Duration::from_micros)
    };
    let steps = |v: &serde_json::Value| v.get("steps").and_then(|s| s.as_str()).map(str::to_owned);
    let listening = with_msg(LISTENING);
    let deferred = with_msg(DEFERRED);
    Some(AgentStart {
        log_to_listening: ready.duration_since(first).ok()?,
        process_to_listening: listening.and_then(micros),
        steps: listening.and_then(steps),
        process_to_ready: deferred.and_then(micros),
        deferred_steps: deferred.and_then(steps),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_from_its_log_lines() {
        let console = "[    4.1] Run /init\n\
            {\"msg\":\"mounted\",\"pid\":\"1\",\"ts\":\"2026-12-06T07:51:23.900000000Z\"}\n\
            {\"msg\":\"ttRPC server started\",\"pid\":\"1\",\"ts\":\"2026-12-06T07:51:24.133000000Z\"}\n";
        let start = agent_start(console).expect("listened");
        assert_eq!(start.log_to_listening, Duration::from_millis(233));
        assert_eq!(start.process_to_listening, None);
        assert_eq!(start.summary(), "first log line to ttRPC listening 233 ms");
        assert_eq!(agent_start("no log"), None);
    }

    #[test]
    fn the_agents_own_step_times_are_read_too() {
        let console = "{\"msg\":\"announce\",\"pid\":\"1\",\"ts\":\"2026-12-06T07:51:24.000000000Z\"}\n\
            {\"msg\":\"ttRPC server started\",\"pid\":\"1\",\"ts\":\"2026-12-06T07:51:24.020000000Z\"}\n\
            {\"msg\":\"start steps\",\"pid\":\"1\",\"since_start_us\":\"41000\",\"steps\":\"config=5us serve=9us\",\"ts\":\"2026-12-06T07:51:24.021000000Z\"}\n\
            {\"msg\":\"deferred start done\",\"pid\":\"1\",\"since_start_us\":90500,\"steps\":\"cgroup_mounts=7us\",\"ts\":\"2026-12-06T07:51:24.070000000Z\"}\n";
        let start = agent_start(console).expect("listened");
        assert_eq!(start.log_to_listening, Duration::from_millis(20));
        assert_eq!(start.process_to_listening, Some(Duration::from_millis(41)));
        assert_eq!(start.steps.as_deref(), Some("config=5us serve=9us"));
        assert_eq!(start.process_to_ready, Some(Duration::from_micros(90_500)));
        assert_eq!(start.deferred_steps.as_deref(), Some("cgroup_mounts=7us"));
        assert_eq!(
            start.summary(),
            "first log line to ttRPC listening 20 ms (process start to listening 41 ms, to ready 90 ms)"
        );
    }
}
