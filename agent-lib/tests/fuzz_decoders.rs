//! Fuzzing of every decoder the host or the guest kernel feeds (issue #11): the kernel command
//! line, the agent's config file, uevents, storage mount options, and ttrpc payloads decoded to
//! protobuf and converted to OCI (`rpc::oci`) and storage requests. A bounded, deterministic
//! mutation loop on stable Rust (no extra crate): each seed of `tests/fuzz_corpus/<decoder>/`
//! (the ttrpc seeds are built from the wire fixtures) is mutated by byte flips, insertions,
//! deletions, duplications and dictionary splices; every input must decode or be refused,
//! never panic. Set `FUZZ_ITERATIONS` to run longer.

use std::path::Path;

use agent_protos::agent as pb;
use kata_agent::config::{Config, parse_cmdline};
use kata_agent::device::Uevent;
use kata_agent::rpc::decode_storage;
use kata_agent::rpc::oci::{process_from_proto, spec_from_proto};
use kata_agent::storage::MountOptions;
use protobuf::Message;

use agent_testing::wire::{create_request, process, spec};

/// Mutations per seed by default (the whole file runs in a few seconds).
const ITERATIONS: usize = 3000;

/// Tokens the decoders give meaning to, spliced in by the mutator.
const DICTIONARY: &[&[u8]] = &[
    b"agent.",
    b"=",
    b" ",
    b"\"",
    b",",
    b"\0",
    b"..",
    b"/",
    b"@",
    b"\n",
    b"[",
    b"]",
    b"0x",
    b"-1",
    b"4294967295",
    b"18446744073709551616",
    b"s",
    b"ms",
    b"vsock://",
    b"fsGroup=",
    b"ACTION=",
    b"DEVPATH=",
    b"SEQNUM=",
    b"libudev\0",
    b"\xff\xfe",
    b"\xc3\x28",
];

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random mutations of `seed`.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 if !data.is_empty() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(data.len());
                let chunk = data[at.min(end)..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, chunk);
            }
            4 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                data.splice(at..at, token.iter().copied());
            }
            _ => data.truncate(at),
        }
    }
    data
}

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ITERATIONS)
}

/// The committed seeds of `decoder`.
fn corpus(decoder: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(decoder);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seed in {}", dir.display());
    seeds
}

/// Runs `decode` on every seed and `iterations()` mutations of each; returns the inputs tried.
fn fuzz(seeds: &[Vec<u8>], salt: u64, mut decode: impl FnMut(&[u8])) -> usize {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ salt);
    let mut tried = 0;
    for seed in seeds {
        decode(seed);
        for _ in 0..iterations() {
            decode(&mutate(&mut rng, seed));
            tried += 1;
        }
    }
    tried
}

#[test]
fn the_command_line_parsers_never_panic() {
    let tried = fuzz(&corpus("cmdline"), 1, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let parsed = parse_cmdline(&text);
        let (config, _warnings) = Config::from_cmdline(&text);
        // Whatever was accepted is a config the agent can run with.
        let _ = (parsed, config.cgroup_v2());
    });
    assert!(tried > 0);
}

#[test]
fn the_config_file_parser_never_panics() {
    fuzz(&corpus("config_file"), 2, |bytes| {
        let mut config = Config::default();
        let _ = config.apply_file(&String::from_utf8_lossy(bytes));
    });
}

#[test]
fn the_uevent_parser_never_panics() {
    let mut parsed = 0;
    fuzz(&corpus("uevent"), 3, |bytes| {
        if let Ok(event) = Uevent::parse(bytes) {
            parsed += 1;
            let _ = (event.var("DEVPATH"), event.is_add());
        }
    });
    assert!(
        parsed > 0,
        "no mutated uevent parsed: the seeds are not uevents"
    );
}

#[test]
fn the_storage_option_parsers_never_panic() {
    fuzz(&corpus("storage_options"), 4, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let options: Vec<&str> = text.split('\n').collect();
        if let Ok(parsed) = MountOptions::parse(&options) {
            let _ = (parsed.data_string(), parsed.read_only());
        }
        let _ = MountOptions::parse_remount(&options);
    });
}

/// Seeds for the ttrpc payloads: the requests the wire fixtures send.
fn ttrpc_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), &["sh", "-c", "echo x"], true, None);
    s.Linux.as_mut().unwrap().CgroupsPath = "/kata/c1".into();
    let create = create_request("c1", s, false);
    let exec = pb::ExecProcessRequest {
        container_id: "c1".into(),
        exec_id: "e1".into(),
        process: protobuf::MessageField::some(process(&["ls", "-l"], false)),
        ..Default::default()
    };
    let storage = pb::Storage {
        driver: "local".into(),
        source: "/dev/vda".into(),
        fstype: "ext4".into(),
        options: vec!["ro".into(), "fsGroup=5".into()],
        mount_point: "/run/kata-containers/sandbox/storage/x".into(),
        ..Default::default()
    };
    let sandbox = pb::CreateSandboxRequest {
        hostname: "pod".into(),
        storages: vec![storage],
        sandbox_id: "sb".into(),
        ..Default::default()
    };
    vec![
        create.write_to_bytes().unwrap(),
        exec.write_to_bytes().unwrap(),
        sandbox.write_to_bytes().unwrap(),
    ]
}

#[test]
fn ttrpc_payloads_decode_and_convert_without_panics() {
    let mut converted = 0;
    fuzz(&ttrpc_seeds(), 5, |bytes| {
        if let Ok(req) = pb::CreateContainerRequest::parse_from_bytes(bytes)
            && let Some(s) = req.OCI.as_ref()
            && spec_from_proto(s).is_ok()
        {
            converted += 1;
        }
        if let Ok(req) = pb::ExecProcessRequest::parse_from_bytes(bytes)
            && let Some(p) = req.process.as_ref()
        {
            let _ = process_from_proto(p, "process");
        }
        if let Ok(req) = pb::CreateSandboxRequest::parse_from_bytes(bytes) {
            for s in &req.storages {
                let _ = decode_storage(s);
            }
        }
    });
    assert!(
        converted > 0,
        "no mutated spec converted: the seeds are not specs"
    );
}
