//! CreateContainer: devices, storages, bundle, cgroup, the held init; all undone on failure.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::Instrument;

use oci_spec::runtime::Spec;

use super::hooks::{HookState, run_hooks};
use super::labels::apply_labels;
use super::shared_mounts::SharedMount;
use super::teardown::{Step, Teardown};
use super::user::StringUser;
use super::user_db::apply_string_user;
use super::{
    Container, ContainerError, Containers, Slot, State, Status, bundle, spec, validate_container_id,
};
use crate::attach::{AttachError, DeviceRequest, StorageRequest};
use crate::host::{ContainerSetup, LaunchRequest, LaunchTarget};
use crate::process::{Process, StdioPorts, launch_spec};

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
        let mut teardown = Teardown::default();
        match self.build_steps(request, first, &mut teardown).await {
            Ok(container) => Ok(container),
            Err((cid, e)) => {
                teardown.rollback(&self.host, &self.attach, &cid).await;
                Err(e)
            }
        }
    }

    async fn build_steps(
        &self,
        request: CreateRequest,
        first: bool,
        teardown: &mut Teardown,
    ) -> Result<Arc<Container>, (String, ContainerError)> {
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
        let fail = |e: ContainerError| (cid.clone(), e);
        let host = &self.host;
        // First, as Kata: the streams are closed whatever fails later.
        let passfd = self.passfd_io(ports).await.map_err(fail)?;

        // Everything that can be refused without touching the OS, first.
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| ContainerError::InvalidSpec("the spec has no process".into()))
            .map_err(fail)?;
        launch_spec(&process).map_err(|e| fail(e.into()))?;
        let cgroup = spec::cgroup_path(&cid, &spec).map_err(fail)?;
        spec::join_shared_namespaces(&mut spec, &self.sandbox.namespaces(), sandbox_pidns, first)
            .map_err(fail)?;
        spec::append_guest_hooks(&mut spec, self.sandbox.guest_hooks().as_ref());
        spec::normalize_device_paths(&mut spec).map_err(fail)?;
        // The launcher mounts the OCI `cgroup` mount from the cgroup the agent made.
        if let Some(linux) = spec.linux_mut().as_mut() {
            linux.set_cgroups_path(Some(std::path::PathBuf::from(&cgroup)));
        }
        apply_labels(&mut spec, &*host.sysfs).map_err(fail)?;
        let shared = self
            .plan_shared_mounts(&cid, &spec, &shared_mounts)
            .map_err(fail)?;

        let devices = self
            .attach
            .add_devices(&cid, &devices, &mut spec)
            .await
            .map_err(|source| fail(attach_error(&cid, source)))?;
        self.attach
            .add_container_storages(&cid, &storages)
            .await
            .map_err(|source| fail(attach_error(&cid, source)))?;
        teardown.push(Step::Storages);
        // The device handlers may have rewritten the process (PCIDEVICE_* variables).
        let mut process = spec.process().clone().unwrap_or(process);
        let root_source = root_path(&spec).map_err(fail)?;
        if let Some(user) = string_user.as_ref().filter(|u| !u.is_empty()) {
            apply_string_user(&*host.files, &root_source, user, &mut process)
                .map_err(|e| fail(e.into()))?;
            spec.set_process(Some(process.clone()));
        }
        let (process_spec, stdio) = launch_spec(&process).map_err(|e| fail(e.into()))?;

        let no_pivot_root = root_is_initramfs(host, &cid).map_err(fail)?;
        bundle::prepare(host, &cid, &mut spec, teardown).map_err(fail)?;
        host.cgroups
            .create(&cgroup)
            .map_err(ContainerError::step(
                &cid,
                format!("create cgroup {cgroup}"),
            ))
            .map_err(fail)?;
        teardown.push(Step::Cgroup(cgroup.clone()));
        if let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            host.cgroups
                .set(&cgroup, resources)
                .map_err(ContainerError::step(
                    &cid,
                    format!("set cgroup {cgroup} limits"),
                ))
                .map_err(fail)?;
        }

        let setup = Arc::new(ContainerSetup {
            id: cid.clone(),
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
        let launched = host
            .launcher
            .launch(&launch)
            .await
            .map_err(ContainerError::step(&cid, "start the init process"))
            .map_err(fail)?;
        let pid = launched.pid;
        let init = match Process::new(&cid, true, launched) {
            Ok(init) => init,
            Err(e) => {
                // Never added to the cgroup, so nothing waits on it there.
                let _ = host.launcher.signal(pid, libc::SIGKILL);
                return Err(fail(e.into()));
            }
        };
        teardown.push(Step::Kill(init.clone()));
        if let Some(io) = passfd {
            init.splice(io);
        }
        if let Some(size) = process.console_size()
            && stdio == crate::host::StdioMode::Pty
        {
            let rows = u16::try_from(size.height()).unwrap_or(u16::MAX);
            let cols = u16::try_from(size.width()).unwrap_or(u16::MAX);
            let resized = init.resize(&*host.launcher, rows, cols);
            resized.map_err(|e| fail(e.into()))?;
        }
        host.cgroups
            .add_process(&cgroup, pid)
            .map_err(ContainerError::step(
                &cid,
                format!("add pid {pid} to cgroup {cgroup}"),
            ))
            .map_err(fail)?;
        // The runtime's own hooks, once the container's namespaces exist and before its
        // program runs: prestart (deprecated by OCI, still used), then createRuntime.
        if let Some(spec_hooks) = setup.spec.hooks() {
            let state = hook_state(&setup, "creating", pid);
            for (kind, list) in [
                ("prestart", spec_hooks.prestart()),
                ("createRuntime", spec_hooks.create_runtime()),
            ] {
                run_hooks(
                    &*host.launcher,
                    kind,
                    list.as_deref().unwrap_or_default(),
                    &state,
                )
                .await
                .map_err(|source| ContainerError::Hook {
                    container: cid.clone(),
                    source,
                })
                .map_err(fail)?;
            }
        }

        self.make_shared_mounts(&cid, pid, shared)
            .await
            .map_err(fail)?;

        // Last, so that no later step can fail: the first container's pid namespace becomes the
        // sandbox's, pinned while its init is a live child of the agent.
        if first {
            self.sandbox
                .adopt_pid_namespace(&cid, pid)
                .map_err(|e| {
                    ContainerError::step(&cid, "pin the sandbox pid namespace")(
                        std::io::Error::other(e.to_string()),
                    )
                })
                .map_err(fail)?;
        }
        let mut teardown = std::mem::take(teardown);
        teardown.keep_processes();
        Ok(Arc::new(Container {
            id: cid.clone(),
            cgroup,
            setup,
            root_source,
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
