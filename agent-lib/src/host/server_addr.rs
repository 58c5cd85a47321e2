//! The address the ttrpc server listens on (`agent.server_addr=`, `KATA_AGENT_SERVER_ADDR`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Longest unix socket path or abstract name: `sun_path` is 108 bytes, one of them the
/// terminating NUL (paths) or the leading NUL (abstract names).
const MAX_UNIX_NAME: usize = 107;

/// A listen address, in the URI forms that ttrpc and Kata use:
///
/// | text | value |
/// |---|---|
/// | `vsock://-1:1024` | [`ServerAddr::Vsock`] with `cid` [`ServerAddr::VSOCK_CID_ANY`] |
/// | `vsock://3:1024` | [`ServerAddr::Vsock`] with `cid` 3 |
/// | `unix:///run/agent.sock` | [`ServerAddr::Unix`] with path `/run/agent.sock` |
/// | `unix://@agent` | [`ServerAddr::UnixAbstract`] with name `agent` |
///
/// `Display` writes the same forms back, and `parse(display(a)) == a` for every parsed `a`.
/// The default is `vsock://-1:1024`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    /// An `AF_VSOCK` address.
    Vsock {
        /// The context id to bind; [`ServerAddr::VSOCK_CID_ANY`] (written `-1`) for any.
        cid: u32,
        /// The port.
        port: u32,
    },
    /// A unix socket at a filesystem path.
    Unix(PathBuf),
    /// A unix socket in the abstract namespace; the name excludes the leading `@`.
    UnixAbstract(String),
}

impl ServerAddr {
    /// `VMADDR_CID_ANY`, written `-1` in the URI.
    pub const VSOCK_CID_ANY: u32 = u32::MAX;
    /// The port the Kata runtime connects to.
    pub const DEFAULT_VSOCK_PORT: u32 = 1024;

    /// `vsock://-1:<port>`: any CID, the given port.
    pub fn vsock_any(port: u32) -> Self {
        ServerAddr::Vsock {
            cid: Self::VSOCK_CID_ANY,
            port,
        }
    }

    /// Where the agent's other vsock port `port` (debug console, logs, passfd) is served
    /// next to this address: the same CID on vsock; outside a VM, on a unix socket, the path
    /// (or abstract name) followed by `_<port>`, the way Firecracker and Cloud Hypervisor
    /// name a hybrid-vsock port's socket.
    pub fn port_addr(&self, port: u32) -> ServerAddr {
        match self {
            ServerAddr::Vsock { cid, .. } => ServerAddr::Vsock { cid: *cid, port },
            ServerAddr::Unix(path) => {
                let mut name = path.clone().into_os_string();
                name.push(format!("_{port}"));
                ServerAddr::Unix(name.into())
            }
            ServerAddr::UnixAbstract(name) => ServerAddr::UnixAbstract(format!("{name}_{port}")),
        }
    }
}

impl Default for ServerAddr {
    fn default() -> Self {
        ServerAddr::vsock_any(Self::DEFAULT_VSOCK_PORT)
    }
}

/// Why a string is not a [`ServerAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerAddrError {
    /// Neither `vsock://` nor `unix://`.
    #[error("unsupported address {0:?}; expected vsock://CID:PORT, unix:///PATH or unix://@NAME")]
    Scheme(String),
    /// `vsock://` not followed by `CID:PORT`.
    #[error("invalid vsock address {0:?}; expected vsock://CID:PORT with CID -1 for any")]
    Vsock(String),
    /// An empty or over-long unix path or abstract name, or one containing a NUL byte.
    #[error("invalid unix socket name {0:?}; expected 1 to 107 bytes without NUL")]
    Unix(String),
}

impl FromStr for ServerAddr {
    type Err = ServerAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("vsock://") {
            return parse_vsock(rest).ok_or_else(|| ServerAddrError::Vsock(s.to_owned()));
        }
        if let Some(rest) = s.strip_prefix("unix://") {
            let (abstract_name, name) = match rest.strip_prefix('@') {
                Some(name) => (true, name),
                None => (false, rest),
            };
            if name.is_empty() || name.len() > MAX_UNIX_NAME || name.contains('\0') {
                return Err(ServerAddrError::Unix(s.to_owned()));
            }
            return Ok(if abstract_name {
                ServerAddr::UnixAbstract(name.to_owned())
            } else {
                ServerAddr::Unix(PathBuf::from(name))
            });
        }
        Err(ServerAddrError::Scheme(s.to_owned()))
    }
}

fn parse_vsock(rest: &str) -> Option<ServerAddr> {
    let (cid, port) = rest.split_once(':')?;
    let cid = match cid {
        "-1" => ServerAddr::VSOCK_CID_ANY,
        digits => parse_u32(digits)?,
    };
    Some(ServerAddr::Vsock {
        cid,
        port: parse_u32(port)?,
    })
}

/// Plain decimal digits only (no sign, no spaces), unlike `u32::from_str` which takes `+`.
fn parse_u32(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Vsock { cid, port } if *cid == Self::VSOCK_CID_ANY => {
                write!(f, "vsock://-1:{port}")
            }
            ServerAddr::Vsock { cid, port } => write!(f, "vsock://{cid}:{port}"),
            ServerAddr::Unix(path) => write!(f, "unix://{}", path.display()),
            ServerAddr::UnixAbstract(name) => write!(f, "unix://@{name}"),
        }
    }
}
