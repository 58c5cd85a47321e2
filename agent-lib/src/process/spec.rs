//! From an OCI process to what the launcher runs.

use std::path::PathBuf;

use oci_spec::runtime::Process as OciProcess;

use super::ProcessError;
use crate::host::{ProcessSpec, StdioMode};

/// The program, credentials and stdio mode of an OCI process: a pty when it asks for a
/// terminal, pipes otherwise.
pub fn launch_spec(process: &OciProcess) -> Result<(ProcessSpec, StdioMode), ProcessError> {
    let args = process.args().clone().unwrap_or_default();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(ProcessError::InvalidProcess(
            "process.args is empty: nothing to run".into(),
        ));
    }
    let cwd = process.cwd();
    let cwd = if cwd.as_os_str().is_empty() {
        PathBuf::from("/")
    } else if cwd.is_absolute() {
        cwd.clone()
    } else {
        return Err(ProcessError::InvalidProcess(format!(
            "process.cwd {cwd:?} is not absolute"
        )));
    };
    let user = process.user();
    let additional_gids = user.additional_gids().clone().unwrap_or_default();
    check_id("process.user.uid", user.uid())?;
    check_id("process.user.gid", user.gid())?;
    for (i, &gid) in additional_gids.iter().enumerate() {
        check_id(&format!("process.user.additionalGids[{i}]"), gid)?;
    }
    let spec = ProcessSpec {
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids,
    };
    let stdio = match process.terminal() {
        Some(true) => StdioMode::Pty,
        _ => StdioMode::Pipes,
    };
    Ok((spec, stdio))
}

/// Refuses the id `(uid_t)-1`: to `setresuid`/`setresgid` it means "leave unchanged", so the
/// process would keep the setup helper's root credentials.
fn check_id(field: &str, id: u32) -> Result<(), ProcessError> {
    if id == u32::MAX {
        return Err(ProcessError::InvalidProcess(format!(
            "{field} {id} is (uid_t)-1, which setresuid(2) ignores: refused"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{ProcessBuilder, UserBuilder};

    use super::*;

    fn with_user(uid: u32, gid: u32, extra: Vec<u32>) -> OciProcess {
        let user = UserBuilder::default()
            .uid(uid)
            .gid(gid)
            .additional_gids(extra)
            .build()
            .unwrap();
        ProcessBuilder::default()
            .args(vec!["sh".to_owned()])
            .cwd("/")
            .user(user)
            .build()
            .unwrap()
    }

    #[test]
    fn the_no_change_id_is_refused_naming_the_field() {
        let cases = [
            (with_user(u32::MAX, 0, vec![]), "process.user.uid"),
            (with_user(0, u32::MAX, vec![]), "process.user.gid"),
            (
                with_user(1000, 1000, vec![5, u32::MAX]),
                "process.user.additionalGids[1]",
            ),
        ];
        for (process, field) in cases {
            let err = launch_spec(&process).unwrap_err();
            assert!(matches!(err, ProcessError::InvalidProcess(_)), "{err}");
            assert!(err.to_string().contains(field), "{err}");
        }
        let (ok, _) = launch_spec(&with_user(u32::MAX - 1, 65534, vec![0])).unwrap();
        assert_eq!((ok.uid, ok.gid), (u32::MAX - 1, 65534));
    }
}
