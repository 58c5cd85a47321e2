//! The storage RPCs (AddSwap, AddSwapPath, GetVolumeStats, ResizeVolume,
//! UpdateEphemeralMounts, RemoveStaleVirtiofsShareMounts) and the decoding of Kata's `Storage`
//! message, which CreateSandbox and CreateContainer use too.

use std::path::Path;

use agent_protos::empty::Empty;
use agent_protos::{agent, csi, types};
use protobuf::MessageField;
use ttrpc::Code;

use super::error::status;
use crate::Agent;
use crate::device::{PciPath, SlotFn};
use crate::storage::{self, FsGroup, FsGroupPolicy, StorageRequest, VolumeUsage};

/// Decodes one `Storage` message.
pub fn decode_storage(storage: &agent::Storage) -> StorageRequest {
    let fs_group = storage.fs_group.as_ref().map(|g| FsGroup {
        gid: g.group_id,
        policy: match g.group_change_policy.enum_value() {
            Ok(types::FSGroupChangePolicy::OnRootMismatch) => FsGroupPolicy::OnRootMismatch,
            _ => FsGroupPolicy::Always,
        },
    });
    StorageRequest {
        driver: storage.driver.clone(),
        driver_options: storage.driver_options.clone(),
        source: storage.source.clone(),
        fstype: storage.fstype.clone(),
        options: storage.options.clone(),
        mount_point: storage.mount_point.clone().into(),
        fs_group,
        shared: storage.shared,
    }
}

/// Decodes a list of `Storage` messages.
pub fn decode_storages(storages: &[agent::Storage]) -> Vec<StorageRequest> {
    storages.iter().map(decode_storage).collect()
}

/// AddSwap: each element of `PCIPath` is a slot on the next bus from root complex 00.
pub(crate) async fn add_swap(agent: &Agent, req: agent::AddSwapRequest) -> ttrpc::Result<Empty> {
    let slots = req
        .PCIPath
        .iter()
        .map(|&slot| {
            u8::try_from(slot)
                .ok()
                .and_then(|s| SlotFn::new(s, 0).ok())
                .ok_or_else(|| {
                    status(
                        Code::INVALID_ARGUMENT,
                        format!("PCI slot {slot} out of range"),
                    )
                })
        })
        .collect::<ttrpc::Result<Vec<_>>>()?;
    let path = PciPath::new(0, slots)
        .map_err(|e| status(Code::INVALID_ARGUMENT, format!("PCI path: {e}")))?;
    let storages = agent.storages();
    storage::add_swap_pci(storages.host(), storages.devices(), &path).await?;
    Ok(Empty::new())
}

/// AddSwapPath.
pub(crate) fn add_swap_path(agent: &Agent, req: agent::AddSwapPathRequest) -> ttrpc::Result<Empty> {
    storage::add_swap_path(agent.host(), Path::new(&req.path))?;
    Ok(Empty::new())
}

/// GetVolumeStats: bytes and inodes, condition "OK".
pub(crate) fn get_volume_stats(
    agent: &Agent,
    req: agent::VolumeStatsRequest,
) -> ttrpc::Result<csi::VolumeStatsResponse> {
    let stats = storage::volume_stats(agent.host(), Path::new(&req.volume_guest_path))?;
    let usage = |u: VolumeUsage, unit: csi::volume_usage::Unit| csi::VolumeUsage {
        available: u.available,
        total: u.total,
        used: u.used,
        unit: unit.into(),
        ..Default::default()
    };
    Ok(csi::VolumeStatsResponse {
        usage: vec![
            usage(stats.bytes, csi::volume_usage::Unit::BYTES),
            usage(stats.inodes, csi::volume_usage::Unit::INODES),
        ],
        volume_condition: MessageField::some(csi::VolumeCondition {
            abnormal: false,
            message: "OK".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// ResizeVolume: grows the filesystem on a resized block volume.
pub(crate) async fn resize_volume(
    agent: &Agent,
    req: agent::ResizeVolumeRequest,
) -> ttrpc::Result<Empty> {
    storage::resize_volume(agent.host(), Path::new(&req.volume_guest_path)).await?;
    Ok(Empty::new())
}

/// UpdateEphemeralMounts.
pub(crate) fn update_ephemeral_mounts(
    agent: &Agent,
    req: agent::UpdateEphemeralMountsRequest,
) -> ttrpc::Result<Empty> {
    let roots = agent.storages().mount_roots();
    storage::update_ephemeral_mounts(agent.host(), roots, &decode_storages(&req.storages))?;
    Ok(Empty::new())
}

/// RemoveStaleVirtiofsShareMounts.
pub(crate) fn remove_stale_virtiofs_share_mounts(agent: &Agent) -> ttrpc::Result<Empty> {
    storage::remove_stale_virtiofs_share_mounts(agent.host())?;
    Ok(Empty::new())
}
