//! CreateContainer: devices, storages, bundle, cgroup, the held init; all undone on failure.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::Instrument;

use oci_spec::runtime::{Process as OciProcess, Spec};

use super::hooks::{HookState, run_hooks};
use super::labels::apply_labels;
use super::shared_mounts::SharedMount;
use super::teardown::{Step, Teardown};
use super::user::StringUser;
use super::user_db::apply_string_user;
use super::{
    Container, ContainerError, Containers, Slot, State, Status, bundle, spec, validate_container_id,
};
use crate::attach::{AttachError, DeviceAdditions, DeviceRequest, StorageRequest};
use crate::host::{ContainerSetup, LaunchRequest, LaunchTarget, StdioMode};
use crate::process::{PassfdIo, Process, StdioPorts, launch_spec};

/// CreateContainer, as the agent understands it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateRequest {
    /// The container id (also its init's exec id).
    pub id: String,
    /// The OCI spec as the host sent it.
    pub spec: Spec,
    /// Hot-plugged devices it uses.
    pub devices: Vec<DeviceRequest>,
    /// Storages to mount for it (rootfs, volumes).
    pub storages: Vec<StorageRequest>,
    /// Join the sandbox pid namespace.
    pub sandbox_pidns: bool,
    /// A user given by name, resolved in the rootfs once the storages are mounted.
    pub string_user: Option<StringUser>,
    /// Mounts of running containers to make visible in this one.
    pub shared_mounts: Vec<SharedMount>,
    /// The host's passfd streams for the init's stdio.
    pub ports: StdioPorts,
}

impl Containers {
    /// Creates a container whose init waits for StartContainer. On failure everything done is
    /// undone (nothing mounted, created or running) and the error names the failed step.
    ///
    /// The work runs on its own task, so a caller that gives up (an RPC timeout) cannot stop it
    /// halfway: it completes or rolls back.
    pub async fn create(self: &Arc<Self>, request: CreateRequest) -> Result<(), ContainerError> {
        validate_container_id(&request.id)?;
        let cid = request.id.clone();
        let first = {
            let mut slots = self.slots();
            if slots.contains_key(&cid) {
                return Err(ContainerError::AlreadyExists(cid));
            }
            let first = slots.is_empty();
            slots.insert(cid.clone(), Slot::Creating);
            first
        };
        let this = self.clone();
        // The task is a child of the caller's span (the RPC's), so its steps are traced under it.
        let span = tracing::info_span!("create_container_task", container_id = %cid);
        let task = tokio::spawn(async move { this.build(request, first).await }.instrument(span));
        let result = match task.await {
            Ok(result) => result,
            Err(e) => Err(ContainerError::Step {
                container: cid.clone(),
                step: "the creation task".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        };
        let mut slots = self.slots();
        match result {
            Ok(container) => {
                slots.insert(cid.clone(), Slot::Ready(container.clone()));
                drop(slots);
                tracing::info!(container = %cid, pid = container.init.pid(), "container created");
                Ok(())
            }
            Err(e) => {
                slots.remove(&cid);
                tracing::error!(container = %cid, error = %e, "CreateContainer failed; undone");
                Err(e)
            }
        }
    }

    async fn build(
        &self,
        request: CreateRequest,
        first: bool,
    ) -> Result<Arc<Container>, ContainerError> {
        let cid = request.id.clone();
        let mut teardown = Teardown::default();
        match self.build_steps(request, first, &mut teardown).await {
            Ok(container) => Ok(container),
            Err(e) => {
                teardown.rollback(&self.host, &self.attach, &cid).await;
                Err(e)
            }
        }
    }

    /// The steps of CreateContainer in order, each recording in `teardown` what it did.
    async fn build_steps(
        &self,
        request: CreateRequest,
        first: bool,
        teardown: &mut Teardown,
    ) -> Result<Arc<Container>, ContainerError> {
        let CreateRequest {
            id: cid,
            mut spec,
            devices,
            storages,
            sandbox_pidns,
            string_user,
            shared_mounts,
            ports,
        } = request;
        // First, as Kata: the streams are closed whatever fails later.
        let passfd = self.passfd_io(ports).await?;
        let (process, cgroup) = self.validate(&cid, &mut spec, sandbox_pidns, first)?;
        let shared = self.plan_shared_mounts(&cid, &spec, &shared_mounts)?;
        let devices = self
            .attach_all(&cid, &devices, &storages, &mut spec, teardown)
            .await?;
        // The device handlers may have rewritten the process (PCIDEVICE_* variables).
        let process = spec.process().clone().unwrap_or(process);
        let user = string_user.as_ref();
        let prepared = self.prepare(&cid, spec, process, cgroup, user, teardown)?;
        let init = self.launch_init(&prepared, passfd, teardown).await?;
        let pid = init.pid();
        self.run_create_hooks(&prepared.setup, pid).await?;
        self.make_shared_mounts(&cid, pid, shared).await?;
        // Last, so that no later step can fail: the first container's pid namespace becomes the
        // sandbox's, pinned while its init is a live child of the agent.
        if first {
            self.sandbox.adopt_pid_namespace(&cid, pid).map_err(|e| {
                ContainerError::step(&cid, "pin the sandbox pid namespace")(std::io::Error::other(
                    e.to_string(),
                ))
            })?;
        }
        let mut teardown = std::mem::take(teardown);
        teardown.keep_processes();
        Ok(Arc::new(Container {
            id: cid.clone(),
            cgroup: prepared.cgroup,
            setup: prepared.setup,
            root_source: prepared.root_source,
            init: init.clone(),
            pci_map: devices.pci_map,
            state: Mutex::new(State {
                status: Status::Created,
                processes: HashMap::from([(cid, init)]),
                starting: HashSet::new(),
                teardown,
                removing: false,
            }),
        }))
    }

    /// Everything that can be refused without touching the OS: the process, the cgroup path,
    /// the shared namespaces, device paths and labels. Completes `spec` with the sandbox's
    /// namespaces and hooks and the cgroup path; returns the process and the cgroup.
    fn validate(
        &self,
        cid: &str,
        spec: &mut Spec,
        sandbox_pidns: bool,
        first: bool,
    ) -> Result<(OciProcess, String), ContainerError> {
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| ContainerError::InvalidSpec("the spec has no process".into()))?;
        launch_spec(&process)?;
        let cgroup = spec::cgroup_path(cid, spec)?;
        spec::join_shared_namespaces(spec, &self.sandbox.namespaces(), sandbox_pidns, first)?;
        spec::append_guest_hooks(spec, self.sandbox.guest_hooks().as_ref());
        spec::normalize_device_paths(spec)?;
        // The launcher mounts the OCI `cgroup` mount from the cgroup the agent made.
        if let Some(linux) = spec.linux_mut().as_mut() {
            linux.set_cgroups_path(Some(PathBuf::from(&cgroup)));
        }
        apply_labels(spec, &*self.host.sysfs)?;
        Ok((process, cgroup))
    }

    /// Hot-plugged devices (which may rewrite `spec`), then the storages.
    async fn attach_all(
        &self,
        cid: &str,
        devices: &[DeviceRequest],
        storages: &[StorageRequest],
        spec: &mut Spec,
        teardown: &mut Teardown,
    ) -> Result<DeviceAdditions, ContainerError> {
        let added = self
            .attach
            .add_devices(cid, devices, spec)
            .await
            .map_err(|source| attach_error(cid, source))?;
        self.attach
            .add_container_storages(cid, storages)
            .await
            .map_err(|source| attach_error(cid, source))?;
        teardown.push(Step::Storages);
        Ok(added)
    }

    /// The process as it will run (a string user resolved in the rootfs), the bundle, and the
    /// cgroup with its limits.
    fn prepare(
        &self,
        cid: &str,
        mut spec: Spec,
        mut process: OciProcess,
        cgroup: String,
        string_user: Option<&StringUser>,
        teardown: &mut Teardown,
    ) -> Result<Prepared, ContainerError> {
        let host = &self.host;
        let root_source = root_path(&spec)?;
        if let Some(user) = string_user.filter(|u| !u.is_empty()) {
            apply_string_user(&*host.files, &root_source, user, &mut process)?;
            spec.set_process(Some(process.clone()));
        }
        let (process_spec, stdio) = launch_spec(&process)?;
        let no_pivot_root = root_is_initramfs(host, cid)?;
        bundle::prepare(host, cid, &mut spec, teardown)?;
        host.cgroups
            .create(&cgroup)
            .map_err(ContainerError::step(cid, format!("create cgroup {cgroup}")))?;
        teardown.push(Step::Cgroup(cgroup.clone()));
        if let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            host.cgroups
                .set(&cgroup, resources)
                .map_err(ContainerError::step(
                    cid,
                    format!("set cgroup {cgroup} limits"),
                ))?;
        }
        let setup = Arc::new(ContainerSetup {
            id: cid.to_owned(),
            spec,
            no_pivot_root,
        });
        let launch = LaunchRequest {
            process: process_spec,
            stdio,
            pipe_size: self.pipe_size,
            target: LaunchTarget::ContainerInit(setup.clone()),
            hold: true,
        };
        Ok(Prepared {
            setup,
            launch,
            console_size: process.console_size().map(|s| (s.height(), s.width())),
            cgroup,
            root_source,
        })
    }

    /// Starts the held init, wires its stdio, and puts it in the container's cgroup.
    async fn launch_init(
        &self,
        prepared: &Prepared,
        passfd: Option<PassfdIo>,
        teardown: &mut Teardown,
    ) -> Result<Arc<Process>, ContainerError> {
        let host = &self.host;
        let (cid, cgroup) = (&prepared.setup.id, &prepared.cgroup);
        let launched = host
            .launcher
            .launch(&prepared.launch)
            .await
            .map_err(ContainerError::step(cid, "start the init process"))?;
        let pid = launched.pid;
        let init = match Process::new(cid, true, launched) {
            Ok(init) => init,
            Err(e) => {
                // Never added to the cgroup, so nothing waits on it there.
                let _ = host.launcher.signal(pid, libc::SIGKILL);
                return Err(e.into());
            }
        };
        teardown.push(Step::Kill(init.clone()));
        if let Some(io) = passfd {
            init.splice(io);
        }
        if let Some((height, width)) = prepared.console_size
            && prepared.launch.stdio == StdioMode::Pty
        {
            let rows = u16::try_from(height).unwrap_or(u16::MAX);
            let cols = u16::try_from(width).unwrap_or(u16::MAX);
            init.resize(&*host.launcher, rows, cols)?;
        }
        host.cgroups
            .add_process(cgroup, pid)
            .map_err(ContainerError::step(
                cid,
                format!("add pid {pid} to cgroup {cgroup}"),
            ))?;
        Ok(init)
    }

    /// The runtime's own hooks, once the container's namespaces exist and before its program
    /// runs: prestart (deprecated by OCI, still used), then createRuntime.
    async fn run_create_hooks(
        &self,
        setup: &ContainerSetup,
        pid: i32,
    ) -> Result<(), ContainerError> {
        let Some(spec_hooks) = setup.spec.hooks() else {
            return Ok(());
        };
        let state = hook_state(setup, "creating", pid);
        for (kind, list) in [
            ("prestart", spec_hooks.prestart()),
            ("createRuntime", spec_hooks.create_runtime()),
        ] {
            let hooks = list.as_deref().unwrap_or_default();
            run_hooks(&*self.host.launcher, kind, hooks, &state)
                .await
                .map_err(|source| ContainerError::Hook {
                    container: setup.id.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// What [`Containers::prepare`] made ready for the launch.
struct Prepared {
    /// The container init's launch, held until StartContainer.
    launch: LaunchRequest,
    /// The bundle's spec as the launcher uses it.
    setup: Arc<ContainerSetup>,
    /// The terminal size asked for, `(height, width)`.
    console_size: Option<(u64, u64)>,
    cgroup: String,
    root_source: PathBuf,
}

/// The OCI state hooks read: `status` is the lifecycle point they run at.
pub(super) fn hook_state(setup: &ContainerSetup, status: &'static str, pid: i32) -> HookState {
    HookState {
        oci_version: setup.spec.version().clone(),
        id: setup.id.clone(),
        status,
        pid,
        bundle: super::bundle_dir(&setup.id).display().to_string(),
        annotations: setup.spec.annotations().clone().unwrap_or_default(),
    }
}

/// The spec's root, which must be absolute (the rootfs storage's mount point).
fn root_path(spec: &Spec) -> Result<PathBuf, ContainerError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| ContainerError::InvalidSpec("the spec has no root".into()))?;
    if !root.path().is_absolute() {
        return Err(ContainerError::InvalidSpec(format!(
            "root.path {:?} is not absolute",
            root.path()
        )));
    }
    Ok(root.path().clone())
}

fn attach_error(cid: &str, source: AttachError) -> ContainerError {
    ContainerError::Attach {
        container: cid.to_owned(),
        source,
    }
}

/// Whether the guest root is an initramfs (`rootfs`), where `pivot_root` cannot work.
fn root_is_initramfs(host: &crate::host::Host, cid: &str) -> Result<bool, ContainerError> {
    let mounts = host
        .mounter
        .mounts()
        .map_err(ContainerError::step(cid, "read the mount table"))?;
    Ok(mounts
        .iter()
        .rev()
        .find(|m| m.target == Path::new("/"))
        .is_some_and(|m| m.fstype == "rootfs"))
}
