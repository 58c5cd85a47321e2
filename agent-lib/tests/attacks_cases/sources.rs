//! Bind sources and masked paths resolved once, by descriptor: a container sharing a volume
//! with the one being created swaps a path component for a symlink (`RENAME_EXCHANGE`) while
//! the agent creates containers again and again.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use agent_protos::oci;

use crate::attacks_support::{PAUSE, assert_serving, init_pid, race, sandbox};
use crate::support::wire::{code, spec};

/// 100 creates miss a race won 1 in 20 tries with p = 0.95^100 < 0.006 (the old code lost 105
/// of 200 bind-source creates and 71 of 176 masked-path creates), in under 10 s each.
const CREATES: usize = 100;

fn bind(dest: &str, source: &Path, options: &[&str]) -> oci::Mount {
    oci::Mount {
        destination: dest.into(),
        type_: "bind".into(),
        source: source.to_string_lossy().into_owned(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    }
}

/// A bind source inside a shared volume: the other container swaps the source directory for
/// a symlink to a guest directory. The agent never binds the guest directory: the source is
/// opened once without following any symlink, and mounted from that descriptor.
#[tokio::test]
#[ignore = "needs root: real containers"]
async fn a_racing_symlink_swap_never_exposes_a_bind_source_outside() {
    let agent = sandbox("srcrace").await;
    let root = agent.rootfs("rootfs");
    let volume = agent.path("shared");
    let outside = agent.path("outside");
    fs::create_dir_all(volume.join("d")).unwrap();
    fs::write(volume.join("d/inside"), "").unwrap();
    fs::write(outside.join("secret"), "guest secret\n").unwrap();
    std::os::unix::fs::symlink(&outside, volume.join("link")).unwrap();

    // Without a race: a source through a symlink is refused, naming it.
    let cid = agent.id("static");
    let mut s = spec(&root, &PAUSE, false, None);
    s.Mounts.push(bind("/mnt", &volume.join("link"), &["bind"]));
    let refused = agent.create_container(&cid, s, false).await;
    assert_ne!(code(&refused), ttrpc::Code::OK);
    assert!(
        format!("{refused:?}").contains("symbolic link"),
        "{refused:?}"
    );

    let racer = race::Exchanger::start(&volume.join("d"), &volume.join("link"));
    let (mut created, mut exposed) = (0, Vec::new());
    for i in 0..CREATES {
        let cid = agent.id(&format!("s{i}"));
        let mut s = spec(&root, &PAUSE, false, None);
        s.Mounts
            .push(bind("/mnt", &volume.join("d"), &["bind", "ro"]));
        if agent.create_container(&cid, s, false).await.is_err() {
            continue;
        }
        created += 1;
        let seen = Path::new("/proc")
            .join(init_pid(&cid).to_string())
            .join("root/mnt");
        if seen.join("secret").exists() || !seen.join("inside").exists() {
            exposed.push(i);
        }
        agent.remove(&cid).await;
    }
    let swaps = racer.stop();
    eprintln!(
        "bind sources: {created} of {CREATES} creates under {swaps} swaps, exposed {exposed:?}"
    );
    assert!(
        swaps > CREATES as u64,
        "the racer only swapped {swaps} times"
    );
    assert!(created > 0, "no create got through the race at all");
    assert_eq!(
        exposed,
        Vec::<usize>::new(),
        "the guest directory was bound in"
    );
    assert_eq!(
        fs::read_to_string(outside.join("secret")).unwrap(),
        "guest secret\n"
    );
    let infra = agent.ids_so_far()[0].clone();
    assert_serving(&agent, &infra, "alive").await;
    agent.destroy_and_exit().await;
}

/// runc CVE-2025-31133: masking binds `/dev/null` over a masked file; the container's `/dev`
/// is a volume another container swaps `null` in for a symlink to a writable procfs file. The
/// agent masks with the guest's own null device only. A masked path through a magic link is
/// refused.
#[tokio::test]
#[ignore = "needs root: real containers"]
async fn masked_paths_are_masked_with_the_guests_null_device_only() {
    let agent = sandbox("maskrace").await;
    let root = agent.rootfs("rootfs");
    let devvol = agent.path("devvol");
    let masked = "/proc/keys";
    let with_dev_volume = |masked: &[&str]| {
        let mut s = spec(&root, &PAUSE, false, None);
        s.Mounts.retain(|m| !m.destination.starts_with("/dev"));
        s.Mounts.push(bind("/dev", &devvol, &["rbind"]));
        let linux = s.Linux.as_mut().unwrap();
        linux.MaskedPaths = masked.iter().map(|m| m.to_string()).collect();
        linux.ReadonlyPaths = vec!["/proc/sys".into()];
        s
    };

    let cid = agent.id("magic");
    let refused = agent
        .create_container(&cid, with_dev_volume(&["/proc/self/root/etc"]), false)
        .await;
    assert_ne!(code(&refused), ttrpc::Code::OK, "a magic link was followed");

    // The other container keeps making the `null` of the shared /dev a symlink to a procfs
    // file that is global to the guest (only looked at here, never written).
    let core_pattern = Path::new("/proc/sys/kernel/core_pattern");
    let racer = race::Planter::start(&devvol.join("null"), core_pattern);
    let (mut created, mut wrong) = (0, Vec::new());
    for i in 0..CREATES {
        let cid = agent.id(&format!("m{i}"));
        if agent
            .create_container(&cid, with_dev_volume(&[masked]), false)
            .await
            .is_err()
        {
            continue;
        }
        created += 1;
        let pid = init_pid(&cid);
        let seen = fs::metadata(format!("/proc/{pid}/root{masked}")).unwrap();
        let null = seen.file_type().is_char_device() && seen.rdev() == libc::makedev(1, 3);
        if !null {
            wrong.push(i);
        }
        agent.remove(&cid).await;
    }
    let swaps = racer.stop();
    eprintln!("masked paths: {created} of {CREATES} creates under {swaps} swaps, wrong {wrong:?}");
    assert!(
        swaps > CREATES as u64,
        "the racer only swapped {swaps} times"
    );
    assert!(created > 0, "no create got through the race at all");
    assert_eq!(
        wrong,
        Vec::<usize>::new(),
        "{masked} was not masked with the null device"
    );
    let infra = agent.ids_so_far()[0].clone();
    assert_serving(&agent, &infra, "alive").await;
    agent.destroy_and_exit().await;
}
