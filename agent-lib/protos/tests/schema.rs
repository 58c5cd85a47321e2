//! The whole contract as text: every service, message, field (number, label, type), oneof and
//! enum of the five files, compared with `tests/schema.txt`.
//!
//! `schema.txt` was checked token for token against Kata Containers 4.1's protos. If a change
//! to the `.proto` files is intended, regenerate it with
//! `UPDATE_SCHEMA=1 cargo test -p agent-protos --test schema` and review the diff.

use std::fmt::Write as _;

use agent_protos::protobuf::descriptor::field_descriptor_proto::{Label, Type};
use agent_protos::protobuf::descriptor::{DescriptorProto, EnumDescriptorProto};
use agent_protos::{agent, csi, health, oci, types};

fn dump_enum(out: &mut String, scope: &str, e: &EnumDescriptorProto) {
    writeln!(out, "enum {scope}.{}", e.name()).unwrap();
    for v in &e.value {
        writeln!(out, "  {} = {}", v.name(), v.number()).unwrap();
    }
}

fn dump_message(out: &mut String, scope: &str, m: &DescriptorProto) {
    let full = format!("{scope}.{}", m.name());
    writeln!(out, "message {full}").unwrap();
    for f in &m.field {
        let label = match f.label() {
            Label::LABEL_REPEATED => "repeated ",
            _ if f.proto3_optional() => "optional ",
            _ => "",
        };
        let ty = match f.type_() {
            Type::TYPE_MESSAGE | Type::TYPE_ENUM => f.type_name().to_owned(),
            t => format!("{t:?}").trim_start_matches("TYPE_").to_lowercase(),
        };
        let oneof = match f.oneof_index {
            Some(i) if !f.proto3_optional() => {
                format!(" (oneof {})", m.oneof_decl[i as usize].name())
            }
            _ => String::new(),
        };
        writeln!(out, "  {} {}: {label}{ty}{oneof}", f.number(), f.name()).unwrap();
    }
    for nested in &m.nested_type {
        dump_message(out, &full, nested);
    }
    for e in &m.enum_type {
        dump_enum(out, &full, e);
    }
}

fn schema() -> String {
    let mut out = String::new();
    let files = [
        types::file_descriptor(),
        oci::file_descriptor(),
        csi::file_descriptor(),
        health::file_descriptor(),
        agent::file_descriptor(),
    ];
    for file in files {
        let p = file.proto();
        writeln!(out, "file {} package {}", p.name(), p.package()).unwrap();
        for dep in &p.dependency {
            writeln!(out, "import {dep}").unwrap();
        }
        for s in &p.service {
            writeln!(out, "service {}.{}", p.package(), s.name()).unwrap();
            for m in &s.method {
                writeln!(
                    out,
                    "  {}({}) -> {}",
                    m.name(),
                    m.input_type(),
                    m.output_type()
                )
                .unwrap();
            }
        }
        for e in &p.enum_type {
            dump_enum(&mut out, p.package(), e);
        }
        for m in &p.message_type {
            dump_message(&mut out, p.package(), m);
        }
        out.push('\n');
    }
    out
}

#[test]
fn schema_matches_the_recorded_contract() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schema.txt");
    let got = schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap();
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "schema.txt line {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "schema.txt length differs"
    );
}
