//! Table-driven tests of the config subsystem, one file per source.

mod cmdline;
mod duration;
mod env;
mod file;
mod load;
mod robustness;
mod types;

use std::collections::HashMap;
use std::mem::discriminant;

use super::{ConfigWarning, WarningKind, WarningSource};

/// A placeholder of each kind, to compare variants without their messages.
pub(super) fn invalid() -> WarningKind {
    WarningKind::InvalidValue(String::new())
}

pub(super) fn ignored() -> WarningKind {
    WarningKind::Ignored("")
}

pub(super) fn same_kind(a: &WarningKind, b: &WarningKind) -> bool {
    discriminant(a) == discriminant(b)
}

/// Assert exactly one warning, of `kind`'s variant, from `source`, about `token`.
#[track_caller]
pub(super) fn assert_one_warning(
    warnings: &[ConfigWarning],
    source: WarningSource,
    token: &str,
    kind: &WarningKind,
) {
    assert_eq!(warnings.len(), 1, "{token}: {warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w.source, source, "{token}: {w:?}");
    assert_eq!(w.token, token, "{w:?}");
    assert!(
        same_kind(&w.kind, kind),
        "{token}: got {:?}, want {kind:?}",
        w.kind
    );
}

/// An environment lookup over fixed pairs.
pub(super) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}
