//! `uevent-cost N`: parses N raw block `add` uevents and hands each to a device watcher that
//! knows 1,000 devices and has a wait pending (the `uevent` bench's work, without criterion).
//! The gate runs it under `valgrind --tool=callgrind` with two values of N: the difference of
//! the instruction counts over the difference of N is the cost of one event, independent of
//! the machine's load.

use std::hint::black_box;
use std::process::ExitCode;

use agent_benches::uevents::{Watching, block_add};
use kata_agent::device::Uevent;

fn main() -> ExitCode {
    let Some(n) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<usize>().ok())
    else {
        eprintln!("usage: uevent-cost N");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uevent-cost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let watching = rt.block_on(Watching::start());
    let raw = block_add(5000);
    for _ in 0..n {
        match Uevent::parse(black_box(&raw)) {
            Ok(event) => watching.watcher.handle(event),
            Err(e) => {
                eprintln!("uevent-cost: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
