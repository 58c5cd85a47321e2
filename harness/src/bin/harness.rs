//! `harness`: drive a kata-agent from the host side.

use std::process::ExitCode;
use std::time::Duration;

use agent_harness::{AgentClient, call_json};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "VMM test harness and client for kata-agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Calls one RPC of a running agent, like kata-agent-ctl.
    Call {
        /// Agent address: unix:///path, unix://@name or vsock://CID:PORT.
        #[arg(long)]
        addr: String,
        /// Treat --addr as a VMM hybrid-vsock socket and connect to this guest port.
        #[arg(long, value_name = "PORT")]
        hybrid_vsock_port: Option<u32>,
        /// Call timeout (Go/humantime duration; 0 waits forever).
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
        /// RPC name, e.g. Check, Version, CreateSandbox.
        method: String,
        /// Request as JSON (proto3 JSON mapping; proto field names accepted); default `{}`.
        #[arg(default_value = "")]
        json: String,
    },
    /// Lists every RPC the client knows, with its request type.
    Methods,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Methods => {
            for m in agent_protos::methods() {
                println!("{}/{} ({})", m.service, m.name, m.request.full_name());
            }
            ExitCode::SUCCESS
        }
        Command::Call {
            addr,
            hybrid_vsock_port,
            timeout,
            method,
            json,
        } => {
            let client = match hybrid_vsock_port {
                Some(port) => AgentClient::connect_hybrid_vsock(&addr, port).await,
                None => AgentClient::connect(&addr).await,
            };
            let client = match client {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            match call_json(&client, &method, &json, timeout).await {
                Ok(answer) => {
                    println!("{answer}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

fn fail(err: &dyn std::error::Error) -> ExitCode {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    eprintln!("error: {text}");
    ExitCode::FAILURE
}
