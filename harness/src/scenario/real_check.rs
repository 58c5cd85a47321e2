//! `check` steps on a real guest, answered through the harness's debug channel (a console
//! shell): `hostname`, `files`, `exists`, `absent` and `links`. The other checks read the fakes'
//! state and are named as skipped.

use super::format::Checks;
use crate::qemu::shell::{self, quote};

/// What a check step came to on the real guest.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RealChecks {
    /// How many checks were answered (all held).
    pub checked: usize,
    /// The keys that could not be answered on a real guest.
    pub skipped: Vec<&'static str>,
}

/// Runs the answerable checks of `checks` in the guest behind `vsock_addr`.
pub async fn run_real_checks(vsock_addr: &str, checks: &Checks) -> Result<RealChecks, String> {
    let mut done = RealChecks {
        skipped: unanswerable(checks),
        ..RealChecks::default()
    };
    if let Some(want) = &checks.hostname {
        let got = shell::run(vsock_addr, "/bin/busybox hostname").await?;
        expect_eq("hostname", want, &got.text)?;
        done.checked += 1;
    }
    for (path, want) in &checks.files {
        let got = shell::run(vsock_addr, &format!("/bin/busybox cat {}", quote(path)?)).await?;
        if got.status != 0 {
            return Err(format!(
                "files {path}: cannot be read in the guest: {}",
                got.text
            ));
        }
        expect_eq(&format!("files {path}"), want.trim(), &got.text)?;
        done.checked += 1;
    }
    for (path, want) in &checks.links {
        let got = shell::run(
            vsock_addr,
            &format!("/bin/busybox readlink {}", quote(path)?),
        )
        .await?;
        expect_eq(&format!("links {path}"), want, &got.text)?;
        done.checked += 1;
    }
    for (paths, must_exist) in [(&checks.exists, true), (&checks.absent, false)] {
        for path in paths {
            let q = quote(path)?;
            let cmd = format!("/bin/busybox test -e {q} || /bin/busybox test -L {q}");
            let exists = shell::run(vsock_addr, &cmd).await?.status == 0;
            if exists != must_exist {
                let (key, state) = if must_exist {
                    ("exists", "missing")
                } else {
                    ("absent", "present")
                };
                return Err(format!("{key}: {path} is {state} in the guest"));
            }
            done.checked += 1;
        }
    }
    Ok(done)
}

fn expect_eq(what: &str, want: &str, got: &str) -> Result<(), String> {
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected {want:?}\n  got {got:?} in the guest"
        ))
    }
}

/// The keys of `checks` given but not answerable on a real guest.
fn unanswerable(c: &Checks) -> Vec<&'static str> {
    let given = [
        ("json", !c.json.is_empty()),
        ("nodes", !c.nodes.is_empty()),
        ("devices", c.devices.is_some()),
        ("memory", c.memory.is_some()),
        ("net_links", !c.net_links.is_empty()),
        ("net_routes", c.net_routes.is_some()),
        ("net_neighbours", !c.net_neighbours.is_empty()),
        ("mounts", !c.mounts.is_empty()),
        ("cgroups", !c.cgroups.is_empty()),
        ("live_processes", c.live_processes.is_some()),
        ("leftovers", c.leftovers.is_some()),
        ("faults_pending", c.faults_pending.is_some()),
    ];
    given
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_only_keys_are_named() {
        let checks: Checks = serde_yaml::from_str(
            "{ hostname: pod, mounts: { /a: null }, live_processes: 1, absent: [/x] }",
        )
        .unwrap();
        assert_eq!(unanswerable(&checks), ["mounts", "live_processes"]);
        assert!(expect_eq("hostname", "pod", "pod").is_ok());
        let err = expect_eq("hostname", "pod", "other").unwrap_err();
        assert!(err.contains("hostname") && err.contains("other"), "{err}");
    }
}
