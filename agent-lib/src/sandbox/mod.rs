//! The sandbox: what CreateSandbox sets up for all containers of a pod, and undoes.
//!
//! It records the sandbox id and hostname, loads kernel modules, pins shared IPC and UTS
//! namespaces, mounts sandbox storages, scans guest hooks and binds the sandbox DNS over
//! /etc/resolv.conf. The sandbox pid namespace is the first container's init's, pinned when
//! that container is created ([`Sandbox::adopt_pid_namespace`]). State sits behind one lock,
//! never held across an OS call.

mod dns;
mod error;
mod hooks;
mod modules;
mod namespaces;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use oci_spec::runtime::Hooks;

pub use dns::{GUEST_RESOLV_CONF, SANDBOX_RESOLV_CONF};
pub use error::SandboxError;
pub use modules::{KernelModule, MODPROBE};
pub use namespaces::SANDBOX_NS_DIR;

use crate::attach::{Attach, StorageRequest};
use crate::host::{Host, NamespaceKind};
use crate::undo::{Undo, unwind};

/// Where containers' bundles and the sandbox's own files live.
pub const CONTAINER_BASE: &str = "/run/kata-containers";

/// CreateSandbox, as the agent understands it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxRequest {
    /// The sandbox id (also the id of its infra container); empty keeps none.
    pub id: String,
    /// The pod's hostname; empty leaves it alone.
    pub hostname: String,
    /// resolv.conf lines.
    pub dns: Vec<String>,
    /// Storages for the whole sandbox.
    pub storages: Vec<StorageRequest>,
    /// Where the guest's OCI hooks are; `None` for none.
    pub guest_hook_path: Option<PathBuf>,
    /// Kernel modules to load.
    pub kernel_modules: Vec<KernelModule>,
}

/// The namespaces containers share, by the path of their pins (bind mounts of nsfs files, never
/// `/proc/<pid>/ns/...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedNamespaces {
    /// The pinned IPC namespace.
    pub ipc: Option<PathBuf>,
    /// The pinned UTS namespace.
    pub uts: Option<PathBuf>,
    /// The sandbox pid namespace (the first container's init's, pinned).
    pub pid: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct State {
    created: bool,
    id: String,
    hostname: String,
    hooks: Option<Hooks>,
    namespaces: SharedNamespaces,
    /// The pid namespace is being pinned.
    pinning_pid: bool,
    /// The container whose init's pid namespace is pinned, and how to release the pin.
    pid_owner: Option<(String, Vec<Undo>)>,
    cleanup: Vec<Undo>,
}

/// The sandbox of this agent.
#[derive(Debug)]
pub struct Sandbox {
    host: Host,
    attach: Attach,
    state: Mutex<State>,
}

impl Sandbox {
    /// A sandbox not created yet, mounting its storages through `attach`.
    pub fn new(host: Host, attach: Attach) -> Self {
        Sandbox {
            host,
            attach,
            state: Mutex::default(),
        }
    }

    /// Sets the sandbox up. On failure everything done is undone and the error names the step.
    pub async fn create(&self, request: SandboxRequest) -> Result<(), SandboxError> {
        {
            let mut state = self.lock();
            if state.created {
                return Err(SandboxError::AlreadyCreated);
            }
            // Taken now so a concurrent CreateSandbox is refused.
            state.created = true;
        }
        let mut cleanup = Vec::new();
        match self.setup(&request, &mut cleanup).await {
            Ok((namespaces, hooks)) => {
                let mut state = self.lock();
                state.id = request.id;
                state.hostname = request.hostname;
                // A pid namespace pinned before CreateSandbox (a container created first) stays.
                let pid = state.namespaces.pid.take();
                state.namespaces = SharedNamespaces { pid, ..namespaces };
                state.hooks = hooks;
                state.cleanup = cleanup;
                tracing::info!(id = %state.id, "sandbox created");
                Ok(())
            }
            Err(e) => {
                // Each failed step was logged; the create error is what the caller needs.
                let _ = run_cleanup(&self.host, cleanup);
                self.lock().created = false;
                tracing::error!(error = %e, "CreateSandbox failed; undone");
                Err(e)
            }
        }
    }

    async fn setup(
        &self,
        request: &SandboxRequest,
        cleanup: &mut Vec<Undo>,
    ) -> Result<(SharedNamespaces, Option<Hooks>), SandboxError> {
        let host = &self.host;
        host.agent_files
            .create_dir_all(Path::new(CONTAINER_BASE))
            .map_err(SandboxError::step(format!("create {CONTAINER_BASE}")))?;
        if !request.hostname.is_empty() {
            host.system
                .set_hostname(&request.hostname)
                .map_err(SandboxError::step("set the hostname"))?;
        }
        for module in &request.kernel_modules {
            modules::load(host, module).await?;
        }
        let namespaces = SharedNamespaces {
            ipc: Some(namespaces::pin(host, NamespaceKind::Ipc, "", cleanup)?),
            uts: Some(namespaces::pin(
                host,
                NamespaceKind::Uts,
                &request.hostname,
                cleanup,
            )?),
            pid: None,
        };
        self.attach.add_sandbox_storages(&request.storages).await?;
        let hooks = request
            .guest_hook_path
            .as_deref()
            .map(|dir| hooks::scan(host.sysfs.as_ref(), dir));
        if let Err(e) = dns::setup(host, &request.dns, cleanup) {
            if let Err(e) = self.attach.release_sandbox_storages() {
                tracing::warn!(error = %e, "releasing sandbox storages failed");
            }
            return Err(e);
        }
        Ok((namespaces, hooks))
    }

    /// Undoes what [`Sandbox::create`] did (DNS bind, pinned namespaces) and unmounts every
    /// storage left; call it once the containers are gone. The first failure is returned
    /// after every step was tried.
    pub async fn destroy(&self) -> Result<(), SandboxError> {
        let cleanup = {
            let mut state = self.lock();
            state.namespaces = SharedNamespaces::default();
            let mut cleanup = std::mem::take(&mut state.cleanup);
            cleanup.extend(state.pid_owner.take().map(|(_, c)| c).unwrap_or_default());
            cleanup
        };
        let mut result = Ok(());
        if let Err(e) = self.attach.release_all_storages() {
            result = Err(SandboxError::from(e));
        }
        if let Err(e) = run_cleanup(&self.host, cleanup) {
            result = result.and(Err(e));
        }
        result
    }

    /// The sandbox id ("" before CreateSandbox).
    pub fn id(&self) -> String {
        self.lock().id.clone()
    }

    /// The hostname CreateSandbox set.
    pub fn hostname(&self) -> String {
        self.lock().hostname.clone()
    }

    /// The guest hooks found by CreateSandbox.
    pub fn guest_hooks(&self) -> Option<Hooks> {
        self.lock().hooks.clone()
    }

    /// The shared namespaces.
    pub fn namespaces(&self) -> SharedNamespaces {
        self.lock().namespaces.clone()
    }

    /// Pins the pid namespace of `init_pid`, the init of container `owner` (alive and not
    /// reaped), as the sandbox pid namespace, unless one is set; returns whether it was
    /// adopted. The pin lasts as long as `owner` (in Kata the infra container, so the sandbox):
    /// once that init is gone no process can enter the namespace anyway. On failure nothing is
    /// left.
    pub fn adopt_pid_namespace(&self, owner: &str, init_pid: i32) -> Result<bool, SandboxError> {
        {
            let mut state = self.lock();
            if state.namespaces.pid.is_some() || state.pinning_pid {
                return Ok(false);
            }
            state.pinning_pid = true;
        }
        let mut cleanup = Vec::new();
        let pinned = namespaces::pin_pid(&self.host, init_pid, &mut cleanup);
        let mut state = self.lock();
        state.pinning_pid = false;
        match pinned {
            Ok(path) => {
                state.namespaces.pid = Some(path);
                state.pid_owner = Some((owner.to_owned(), cleanup));
                Ok(true)
            }
            Err(e) => {
                drop(state);
                let _ = run_cleanup(&self.host, cleanup);
                Err(e)
            }
        }
    }

    /// Releases the pinned pid namespace if container `owner` holds it (RemoveContainer). The
    /// steps that fail stay for a retry.
    pub fn release_pid_namespace(&self, owner: &str) -> Result<(), SandboxError> {
        let cleanup = {
            let mut state = self.lock();
            match &state.pid_owner {
                Some((cid, _)) if cid == owner => {}
                _ => return Ok(()),
            }
            state.namespaces.pid = None;
            state.pid_owner.take().map(|(_, c)| c).unwrap_or_default()
        };
        let failed = unwind(cleanup, |undo| {
            undo.apply(&self.host)
                .map_err(SandboxError::step(undo.to_string()))
        });
        let mut left = Vec::new();
        let mut first = None;
        for (undo, e) in failed {
            left.insert(0, undo);
            first.get_or_insert(e);
        }
        if !left.is_empty() {
            self.lock().pid_owner = Some((owner.to_owned(), left));
        }
        first.map_or(Ok(()), Err)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Undoes `cleanup` in reverse; every step is tried, the first failure is returned.
fn run_cleanup(host: &Host, cleanup: Vec<Undo>) -> Result<(), SandboxError> {
    let failed = unwind(cleanup, |undo| {
        undo.apply(host)
            .map_err(SandboxError::step(undo.to_string()))
    });
    for (_, e) in &failed {
        tracing::warn!(error = %e, "sandbox cleanup step failed");
    }
    failed.into_iter().next().map_or(Ok(()), |(_, e)| Err(e))
}
