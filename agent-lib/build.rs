//! Link options of the `kata-agent` binary only (tests and the library are not affected).

fn main() {
    // Pack the binary's relative relocations (DT_RELR): the dynamic loader then reads a few KiB
    // of relocations at start instead of ~500 KiB, which stay resident otherwise. Needs GNU ld
    // 2.38 or lld 15 to link and glibc 2.36 to run.
    println!("cargo:rustc-link-arg-bin=kata-agent=-Wl,-z,pack-relative-relocs");
    println!("cargo:rerun-if-changed=build.rs");
}
