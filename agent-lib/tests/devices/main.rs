//! Devices: hotplug waits and the uevent loop on the fakes (`agent_testing::devices::Rig`),
//! CreateContainer's device handlers, and, as root, a real loop device seen by the watcher.

mod devices;
mod devices_handlers;
mod devices_real;
mod uevent_loop;
