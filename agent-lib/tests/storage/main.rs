//! Storages: the drivers on the fakes (with faults, block devices, volumes, watched
//! storages) and, as root, on the real kernel (tmpfs, overlay, bind, a loop-device mmioblk). One
//! binary: the fixtures of `agent_testing::storage` and `agent_testing::devices` compile once.

mod storage;
mod storage_block;
mod storage_faults;
mod storage_loop_real;
mod storage_real;
mod storage_volume;
mod storage_watch;
