//! Containers: the registry, each container's state, and the lifecycle RPCs' logic.
//!
//! The registry maps ids to containers behind a lock held only for lookups and inserts. Each
//! [`Container`] has its own lock for its status and process table; each
//! [`Process`](crate::process::Process) has its own. No lock is held across an OS call or an
//! await, so a slow stats read or a blocked stdio read never delays SignalProcess.

mod bundle;
mod control;
mod create;
mod error;
mod exec;
mod hooks;
mod id;
mod labels;
mod netdev;
mod oom;
mod remove;
mod shared_mounts;
mod spec;
mod stats;
mod teardown;
mod user;
mod user_db;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use bundle::bundle_dir;
pub use create::CreateRequest;
pub use error::ContainerError;
pub use exec::ExecRequest;
pub use hooks::HookError;
pub use id::{MAX_ID_LEN, validate_container_id, validate_exec_id};
pub use labels::{Lsms, apply_labels, check_process};
pub use netdev::{NetworkStats, parse_net_dev};
pub use oom::{OOM_QUEUE_CAPACITY, OomQueue};
pub use shared_mounts::{SHARED_MOUNT_WAIT, SharedMount, container_name};
pub use stats::ContainerStats;
pub use user::{
    GroupEntry, PasswdEntry, ResolvedUser, StringUser, UserError, parse_group, parse_passwd,
    resolve,
};
pub use user_db::{UserDb, apply_string_user, read_user_db};

use crate::attach::Attach;
use crate::device::PciMap;
use crate::host::{ContainerSetup, Host};
use crate::process::{PassfdIo, PassfdStreams, Process, StdioPorts, take_streams};
use crate::sandbox::Sandbox;
use teardown::Teardown;

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Created; its init waits for StartContainer.
    Created,
    /// Started.
    Running,
    /// Frozen by PauseContainer.
    Paused,
    /// Its init has exited.
    Stopped,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

#[derive(Debug)]
struct State {
    status: Status,
    /// Processes by exec id, the init included (under the container id) until waited for.
    processes: HashMap<String, Arc<Process>>,
    /// Exec ids being started.
    starting: HashSet<String>,
    /// What to undo when the container goes.
    teardown: Teardown,
    /// A RemoveContainer is in progress.
    removing: bool,
}

/// One container.
#[derive(Debug)]
pub struct Container {
    id: String,
    cgroup: String,
    setup: Arc<ContainerSetup>,
    /// Its rootfs as the storage mounted it (`string_user` of later execs is read there).
    root_source: std::path::PathBuf,
    init: Arc<Process>,
    /// Host → guest PCI addresses of its VFIO devices, for `PCIDEVICE_*` in exec envs.
    pci_map: PciMap,
    state: Mutex<State>,
}

impl Container {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its cgroup, relative to the hierarchy root.
    pub fn cgroup(&self) -> &str {
        &self.cgroup
    }

    /// What it was launched from.
    pub fn setup(&self) -> &Arc<ContainerSetup> {
        &self.setup
    }

    /// Its init process.
    pub fn init(&self) -> &Arc<Process> {
        &self.init
    }

    /// Its status now.
    pub fn status(&self) -> Status {
        let status = self.lock().status;
        match self.init.exit_status() {
            Some(_) => Status::Stopped,
            None => status,
        }
    }

    /// The exec ids of its processes not waited for yet.
    pub fn exec_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().processes.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wrong_state(&self, operation: &'static str) -> ContainerError {
        ContainerError::WrongState {
            container: self.id.clone(),
            state: self.status().name(),
            operation,
        }
    }
}

#[derive(Debug)]
enum Slot {
    /// Being created: the id is taken.
    Creating,
    Ready(Arc<Container>),
}

/// Every container of the sandbox.
#[derive(Debug)]
pub struct Containers {
    host: Host,
    attach: Attach,
    sandbox: Arc<Sandbox>,
    pipe_size: u32,
    /// The host's passfd streams, when `agent.passfd_listener_port` is set.
    passfd: Option<Arc<PassfdStreams>>,
    slots: Mutex<HashMap<String, Slot>>,
    oom: Arc<OomQueue>,
}

impl Containers {
    /// No containers yet. `pipe_size` is `agent.container_pipe_size` (0: kernel default);
    /// `passfd` the streams of the passfd listener, if one runs.
    pub fn new(
        host: Host,
        attach: Attach,
        sandbox: Arc<Sandbox>,
        pipe_size: u32,
        passfd: Option<Arc<PassfdStreams>>,
    ) -> Self {
        Containers {
            host,
            attach,
            sandbox,
            pipe_size,
            passfd,
            slots: Mutex::default(),
            oom: Arc::default(),
        }
    }

    /// The container `cid`.
    pub fn get(&self, cid: &str) -> Result<Arc<Container>, ContainerError> {
        match self.slots().get(cid) {
            Some(Slot::Ready(c)) => Ok(c.clone()),
            _ => Err(ContainerError::NotFound(cid.to_owned())),
        }
    }

    /// The ids of the created containers, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .slots()
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Ready(_)))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The OOM event queue (GetOOMEvent).
    pub fn oom(&self) -> &OomQueue {
        &self.oom
    }

    /// Process `exec_id` of container `cid` (`""` or `cid` is the init).
    pub fn process(&self, cid: &str, exec_id: &str) -> Result<Arc<Process>, ContainerError> {
        let container = self.get(cid)?;
        let key = if exec_id.is_empty() { cid } else { exec_id };
        container.lock().processes.get(key).cloned().ok_or_else(|| {
            ContainerError::ProcessNotFound {
                container: cid.to_owned(),
                exec_id: exec_id.to_owned(),
            }
        })
    }

    /// The passfd streams `ports` names (none when it names no port).
    async fn passfd_io(&self, ports: StdioPorts) -> Result<Option<PassfdIo>, ContainerError> {
        Ok(take_streams(self.passfd.as_deref(), ports).await?)
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
