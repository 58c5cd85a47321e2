//! `local`: a plain directory in the guest (Kubernetes emptyDir on the guest's disk). No mount.

use async_trait::async_trait;

use super::no_driver_options;
use crate::storage::driver::{DriverContext, StorageDriver};
use crate::storage::error::StorageError;
use crate::storage::fs;
use crate::storage::ownership::MODE_SETGID;
use crate::storage::request::StorageRequest;
use crate::storage::undo::Journal;

/// `local`: creates the mount point directory. Options: `mode=<octal>`, `fsgid=<gid>` (group
/// plus, with `mode`, the setgid bit, as Kata does). Any other option is an error. A directory this driver
/// created is removed, with its contents, when the last user goes.
#[derive(Debug, Default)]
pub struct Local;

#[async_trait]
impl StorageDriver for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn provision(
        &self,
        ctx: &DriverContext<'_>,
        request: &StorageRequest,
        undo: &mut Journal,
    ) -> Result<(), StorageError> {
        no_driver_options(request)?;
        let mut mode = None;
        let mut fsgid = None;
        for option in request.options.iter().flat_map(|o| o.split(',')) {
            match option.split_once('=') {
                Some(("mode", v)) => {
                    let parsed = u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| StorageError::option(option, "not an octal mode"))?;
                    mode = Some(parsed);
                }
                Some(("fsgid", v)) => {
                    let gid = v
                        .parse::<u32>()
                        .map_err(|_| StorageError::option(option, "not a group id"))?;
                    fsgid = Some(gid);
                }
                _ => {
                    return Err(StorageError::option(
                        option,
                        "the local driver takes only mode= and fsgid=",
                    ));
                }
            }
        }
        let files = &*ctx.host.agent_files;
        let existed = ctx.host.sysfs.exists(&request.mount_point);
        fs::create_dir_all(ctx.host, &request.mount_point, undo)?;
        if !existed {
            undo.created_tree(&request.mount_point);
        }
        if let Some(gid) = fsgid {
            files
                .chown(&request.mount_point, None, Some(gid))
                .map_err(|e| StorageError::os("chown", &request.mount_point, e))?;
        }
        if let Some(mode) = mode {
            let mode = if fsgid.is_some() {
                mode | MODE_SETGID
            } else {
                mode
            };
            files
                .set_mode(&request.mount_point, mode)
                .map_err(|e| StorageError::os("chmod", &request.mount_point, e))?;
        }
        Ok(())
    }
}
