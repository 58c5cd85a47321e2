//! A pod on the fakes inside the harness's fake VMM (`agent_harness::scenario::GuestVm`), on
//! real tokio time: the agent's own overhead, with no kernel work under it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agent_harness::ctx;
use agent_harness::scenario::GuestVm;
use agent_harness::vmm::config::{DeviceKind, Hotplug, ProgramSpec, VmConfig};
use anyhow::{Context, bail};

use crate::{calls, requests};

/// Where fake containers' rootfs is (the fakes do not look at it).
const ROOT: &str = "/run/kata-containers/shared/containers/rootfs";

/// A booted guest with its sandbox created; programs `true` (exits 0 at once) and `sleep`
/// (runs until signalled) exist.
pub struct FakePod {
    /// The guest: fakes, fake VMM, agent, client.
    pub vm: GuestVm,
    next: u64,
}

impl std::fmt::Debug for FakePod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePod").field("vm", &self.vm).finish()
    }
}

impl FakePod {
    /// Boots the guest and creates the sandbox; call inside a tokio runtime (real time).
    pub async fn boot() -> anyhow::Result<FakePod> {
        let programs = BTreeMap::from([
            ("true".to_owned(), ProgramSpec::default()),
            (
                "sleep".to_owned(),
                ProgramSpec {
                    until_signal: true,
                    ..ProgramSpec::default()
                },
            ),
        ]);
        let config = VmConfig {
            programs,
            ..VmConfig::default()
        };
        let vm = GuestVm::boot(&config)
            .await
            .map_err(anyhow::Error::msg)
            .context("boot")?;
        calls::create_sandbox(&vm.client)
            .await
            .context("CreateSandbox")?;
        Ok(FakePod { vm, next: 0 })
    }

    /// A fresh id with `prefix`.
    pub fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// Creates and starts container `cid` running `sleep`.
    pub async fn run(&self, cid: &str) -> anyhow::Result<()> {
        let req = requests::create_container(cid, &["sleep"], ROOT.as_ref(), Vec::new());
        calls::create_start(&self.vm.client, &req)
            .await
            .with_context(|| format!("create and start {cid}"))
    }

    /// Removes container `cid`.
    pub async fn remove(&self, cid: &str) -> anyhow::Result<()> {
        calls::remove(&self.vm.client, cid)
            .await
            .with_context(|| format!("remove {cid}"))
    }

    /// ExecProcess + WaitProcess of `true` in `cid`.
    pub async fn exec_true(&mut self, cid: &str) -> anyhow::Result<()> {
        let eid = self.id("e");
        match calls::exec_wait(&self.vm.client, cid, &eid, &["true"]).await {
            Ok(0) => Ok(()),
            Ok(status) => bail!("exec {eid} exited {status}"),
            Err(e) => Err(e).with_context(|| format!("exec {eid}")),
        }
    }

    /// One hotplug: CreateContainer `cid` with a `blk` storage on PCI path 02/00 is sent and
    /// waits for the disk; then the VMM plugs it. Returns the time from the plug to the
    /// CreateContainer reply. Removes the container and unplugs the disk afterwards (untimed).
    pub async fn hotplug_blk(&mut self, cid: &str) -> anyhow::Result<Duration> {
        let mut req = requests::create_container(cid, &["sleep"], ROOT.as_ref(), Vec::new());
        let mount_point = format!("/run/kata-containers/sandbox/storage/{cid}");
        req.storages
            .push(requests::blk_storage("02/00", &mount_point));
        let client = self.vm.client.clone();
        let create = tokio::spawn(async move { client.agent.create_container(ctx(), &req).await });
        let devices = self.vm.agent.devices().clone();
        let known = devices.known();
        while devices.pending() == 0 {
            tokio::task::yield_now().await;
        }
        let plug = Hotplug {
            kind: DeviceKind::VirtioBlk,
            id: Some("disk".into()),
            bus: Some("rp1".into()),
            ..hotplug_defaults()
        };
        let began = Instant::now();
        self.vm.vmm.hotplug(&plug).context("hotplug")?;
        create
            .await
            .context("create task")?
            .with_context(|| format!("CreateContainer {cid}"))?;
        let took = began.elapsed();
        self.remove(cid).await?;
        self.vm.vmm.unplug("disk", None).context("unplug")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(self.vm.vmm.is_idle() && devices.known() == known) {
            if Instant::now() > deadline {
                bail!("the guest did not settle after the unplug");
            }
            tokio::task::yield_now().await;
        }
        Ok(took)
    }
}

fn hotplug_defaults() -> Hotplug {
    Hotplug {
        kind: DeviceKind::VirtioBlk,
        id: None,
        bus: None,
        slot: None,
        mac: None,
        mtu: None,
        controller: None,
        scsi_id: None,
        lun: None,
        size: None,
        count: None,
        vendor: None,
        device: None,
        class: None,
        iommu_group: None,
        driver: None,
        delay: None,
        refused: None,
    }
}
