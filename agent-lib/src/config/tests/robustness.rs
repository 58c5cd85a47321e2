//! Arbitrary input never panics and every warning names a token that was in the input.

use std::path::Path;

use super::super::{Config, load};
use super::env_of;

const FRAGMENTS: &[&str] = &[
    "agent.",
    "log",
    "trace",
    "server_addr",
    "hotplug_timeout",
    "debug_console",
    "devmode",
    "container_pipe_size",
    "log_vport",
    "mem_agent_enable",
    "mem_agent_compact_order",
    "config_file",
    "use_vsock",
    "systemd.unified_cgroup_hierarchy",
    "cgroup_no_v1",
    "=",
    "==",
    "\"",
    " ",
    "\t",
    "\n",
    "-",
    "+",
    ".",
    ":",
    "@",
    "/",
    "0",
    "1",
    "9",
    "99999999999999999999",
    "s",
    "ms",
    "µs",
    "μs",
    "h",
    "m",
    "vsock://",
    "unix://",
    "-1",
    "all",
    ",",
    "true",
    "x",
    "é",
    "[",
    "]",
    "{",
    "}",
    "'",
    "#",
    "secs",
    "nanos",
];

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound
    }

    fn text(&mut self) -> String {
        (0..self.next(24))
            .map(|_| FRAGMENTS[self.next(FRAGMENTS.len())])
            .collect()
    }
}

#[test]
fn arbitrary_input_never_panics() {
    let mut rng = Lcg(0x5eed);
    for _ in 0..3000 {
        let cmdline = rng.text();
        let (_, warnings) = Config::from_cmdline(&cmdline);
        for w in &warnings {
            assert!(cmdline.contains(w.token.as_str()), "{cmdline:?}: {w:?}");
        }

        let file = rng.text();
        let _ = Config::default().apply_file(&file);
        let _ = Config::default().apply_file(&format!("hotplug_timeout = {file}"));

        let value = rng.text();
        let env = env_of(&[
            ("KATA_AGENT_SERVER_ADDR", &value),
            ("KATA_AGENT_LOG_LEVEL", &value),
            ("KATA_AGENT_TRACING", &value),
        ]);
        let _ = Config::default().apply_env(&env);
        let _ = load(&cmdline, Some(Path::new("/f")), &env, |_| Ok(file.clone()));
        let _ = load(
            &format!("{cmdline} agent.config_file=/f"),
            None,
            &env,
            |_| Ok(file.clone()),
        );
    }
}
