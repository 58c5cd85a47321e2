//! The debug console: a shell an operator reaches in the guest.
//!
//! With `agent.debug_console_vport=N` the agent listens on vsock port N and gives each
//! connection its own shell on its own pty (a new session with the pty as controlling
//! terminal), the connection spliced to the pty master; when the connection closes the shell
//! is hung up, killed if it lingers, and reaped. At most [`MAX_SESSIONS`] shells run at once;
//! a connection past that is told so and closed. The port alone enables the console, as in
//! the original Go agent. With only `agent.debug_console` one shell runs on `/dev/console`,
//! started again whenever it exits. The shell is the first of [`SHELLS`] present.
//!
//! Console work runs on tasks of its own: it never holds anything the RPC server needs.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::host::{
    Connection, ExitStatus, Host, Incoming, LaunchRequest, LaunchTarget, NodeKind, ProcessSpec,
    ServerAddr, StdioMode,
};
use crate::process::{Output, Process};

/// Where the console looks for a shell, in order.
pub const SHELLS: [&str; 2] = ["/bin/bash", "/bin/sh"];
/// The agent's own port and the log port, never a console's.
pub const RESERVED_PORTS: [u32; 2] = [1024, 1025];
/// How long a hung-up shell has to exit before it is killed.
const HANGUP_GRACE: Duration = Duration::from_secs(1);
/// The console terminal's size (rows, columns).
pub const WINDOW: (u16, u16) = (24, 80);
/// The least time between two starts of the `/dev/console` shell.
const RESPAWN_DELAY: Duration = Duration::from_secs(1);
/// The most console sessions at once. Each is a shell on a pty: past this, a connection is
/// told so and closed, so a flood of connections cannot exhaust processes, ptys or memory.
pub const MAX_SESSIONS: usize = 8;
/// What a connection past [`MAX_SESSIONS`] reads before it is closed.
pub const TOO_MANY: &[u8] = b"kata-agent: too many debug console sessions\r\n";
/// How long the refusal may take to write (a peer that never reads cannot hold a task).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// What the configuration asks of the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleMode {
    /// No console.
    Off,
    /// One shell on `/dev/console`.
    Console,
    /// A shell per connection on this vsock port.
    Port(u32),
}

/// The console `config` asks for, and a warning when its port cannot be used.
pub fn console_mode(config: &Config) -> (ConsoleMode, Option<String>) {
    let own_port = match &config.server_addr {
        ServerAddr::Vsock { port, .. } => Some(*port),
        _ => None,
    };
    match config.debug_console_vport {
        Some(port) if RESERVED_PORTS.contains(&port) || Some(port) == own_port => (
            ConsoleMode::Off,
            Some(format!(
                "agent.debug_console_vport={port} is reserved (the agent's own port, or the log \
                 port): no debug console"
            )),
        ),
        Some(port) => (ConsoleMode::Port(port), None),
        None if config.debug_console => (ConsoleMode::Console, None),
        None => (ConsoleMode::Off, None),
    }
}

/// The first shell of [`SHELLS`] that is a file.
pub fn find_shell(host: &Host) -> Option<&'static str> {
    SHELLS.into_iter().find(|shell| {
        host.sysfs
            .stat(Path::new(shell))
            .is_ok_and(|i| i.kind == NodeKind::File)
    })
}

fn shell_request(shell: &str, stdio: StdioMode) -> LaunchRequest {
    LaunchRequest {
        process: ProcessSpec {
            args: vec![shell.to_owned()],
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
                "HOME=/root".to_owned(),
                "TERM=vt100".to_owned(),
            ],
            cwd: "/".into(),
            ..ProcessSpec::default()
        },
        stdio,
        target: LaunchTarget::Host,
        ..LaunchRequest::default()
    }
}

/// Serves the console on `addr`: a shell per connection, at most [`MAX_SESSIONS`] at once,
/// until the future is dropped.
pub async fn serve_port(host: Host, addr: ServerAddr, shell: &'static str) -> io::Result<()> {
    let incoming = listen_port(&host, &addr, shell)?;
    serve_sessions(host, incoming, shell).await;
    Ok(())
}

/// Listens on `addr` for console connections; [`serve_sessions`] serves them.
pub fn listen_port(host: &Host, addr: &ServerAddr, shell: &str) -> io::Result<Incoming> {
    let incoming = host.transport.listen(addr)?;
    tracing::info!(%addr, shell, "debug console listening");
    Ok(incoming)
}

/// A shell per connection of `incoming` (a console port already listening), at most
/// [`MAX_SESSIONS`] at once, until the future is dropped.
pub async fn serve_sessions(host: Host, mut incoming: Incoming, shell: &'static str) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
    while let Some(conn) = incoming.next().await {
        match conn {
            Ok(conn) => {
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(max = MAX_SESSIONS, "debug console connection refused");
                    tokio::spawn(refuse(conn));
                    continue;
                };
                let host = host.clone();
                tokio::spawn(async move {
                    match session(&host, conn, shell).await {
                        Ok(status) => tracing::info!(?status, "debug console session ended"),
                        Err(e) => tracing::warn!(error = %e, "debug console session failed"),
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a debug console connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Tells a connection past [`MAX_SESSIONS`] why, then closes it.
async fn refuse(mut conn: Box<dyn Connection>) {
    let write = async {
        conn.write_all(TOO_MANY).await?;
        conn.shutdown().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(REFUSAL_TIMEOUT, write).await {
        tracing::debug!(error = %e, "cannot tell a console connection it is refused");
    }
}

/// One console connection: a shell on a new pty, spliced to `conn` until either side ends;
/// then the shell is hung up (the pty closed), killed after [`HANGUP_GRACE`] if still there,
/// and its exit returned once reaped.
pub async fn session(
    host: &Host,
    conn: Box<dyn Connection>,
    shell: &str,
) -> io::Result<ExitStatus> {
    let launched = host
        .launcher
        .launch(&shell_request(shell, StdioMode::Pty))
        .await?;
    let pid = launched.pid;
    let process = match Process::new("debug-console", false, launched) {
        Ok(p) => p,
        Err(e) => {
            let _ = host.launcher.signal(pid, libc::SIGKILL);
            return Err(io::Error::other(e));
        }
    };
    // A byte stream carries no window size: give the terminal the classic one.
    if let Err(e) = process.resize(&*host.launcher, WINDOW.0, WINDOW.1) {
        tracing::debug!(pid, error = %e, "cannot size the console terminal");
    }
    tracing::info!(pid, shell, "debug console session started");
    splice(&process, conn).await;
    let exited = {
        // Our last reference to the pty master goes with `process`: the kernel hangs up the
        // shell's terminal (SIGHUP to its session).
        let waiting = wait_exit(process);
        match tokio::time::timeout(HANGUP_GRACE, waiting).await {
            Ok(status) => status,
            Err(_) => {
                if let Err(e) = host.launcher.signal(pid, libc::SIGKILL) {
                    tracing::debug!(pid, error = %e, "console shell already gone");
                }
                return Ok(ExitStatus::Signaled(libc::SIGKILL));
            }
        }
    };
    Ok(exited)
}

/// Waits for `process` to exit, holding only its exit watch (the pty is closed now).
async fn wait_exit(process: Arc<Process>) -> ExitStatus {
    let exit = process.exit_watch();
    drop(process);
    exit.await
}

/// Copies `conn` to the shell's terminal and the terminal to `conn` until either ends.
async fn splice(process: &Process, conn: Box<dyn Connection>) {
    let (mut from_host, mut to_host) = tokio::io::split(conn);
    let input = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from_host.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if process.write_stdin(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let output = async {
        loop {
            match process.read(Output::Stdout, 16 * 1024).await {
                Ok(chunk) if !chunk.is_empty() => {
                    if to_host.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    };
    tokio::select! {
        _ = input => {}
        _ = output => {}
    }
    let _ = to_host.shutdown().await;
}

/// Runs a shell on `/dev/console` for as long as the future lives, starting it again when it
/// exits (at most once per [`RESPAWN_DELAY`]).
pub async fn serve_console(host: Host, shell: &'static str) {
    loop {
        let started = tokio::time::Instant::now();
        match host
            .launcher
            .launch(&shell_request(shell, StdioMode::Console))
            .await
        {
            Ok(launched) => {
                tracing::info!(pid = launched.pid, shell, "debug console on /dev/console");
                let status = launched.exit.await;
                tracing::info!(?status, "debug console shell exited");
            }
            Err(e) => tracing::warn!(error = %e, "cannot start the debug console shell"),
        }
        tokio::time::sleep_until(started + RESPAWN_DELAY).await;
    }
}
