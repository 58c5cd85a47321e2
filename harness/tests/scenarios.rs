//! Runs every scenario in /scenarios against an in-process agent inside the fake VMM and
//! checks each trace against its snapshot (scenarios/snapshots/<name>.snap).
//!
//! New or changed traces: `INSTA_UPDATE=always cargo test -p agent-harness --test scenarios`,
//! then review and commit the .snap files (with CI=true insta never writes them).

use std::path::{Path, PathBuf};
use std::time::Instant;

use agent_harness::scenario::{run, suite};

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_scenario_passes_and_matches_its_snapshot() {
    let dir = scenario_dir();
    let files = suite::scenario_files(&dir).expect("scenarios/ is readable");
    assert!(
        files.len() >= 10,
        "expected the scenario suite, found {files:?}"
    );
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut traces = Vec::new();
    for file in &files {
        let name = suite::name_of(file);
        match suite::load(file) {
            Ok(scenario) => {
                let outcome = run(&scenario);
                if let Some(e) = &outcome.error {
                    failures.push(format!("{name}: {e}\n{}", outcome.trace.to_yaml()));
                }
                traces.push((name, outcome.trace.to_yaml()));
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir.join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for (name, trace) in &traces {
            insta::assert_snapshot!(name.as_str(), trace);
        }
    });
    eprintln!("{} scenarios in {elapsed:?}", files.len());
}

#[test]
fn a_scenario_run_twice_gives_the_same_trace() {
    let file = scenario_dir().join("determinism.yaml");
    let scenario = suite::load(&file).expect("determinism.yaml parses");
    let first = run(&scenario);
    let second = run(&scenario);
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.trace, second.trace);
}
