//! Comparing what happened with what a scenario expects: JSON subsets, errors, and the names
//! of seam operations and errnos.

use agent_fakes::Op;
use nix::errno::Errno;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use super::error::FormatError;

/// Converts scenario YAML to JSON (keys become strings).
pub fn to_json(value: &Yaml) -> Result<Json, FormatError> {
    serde_json::to_value(value).map_err(FormatError::NotJson)
}

/// The first place where a JSON value differs from what was expected, by its JSON path (`$.a.b[0]`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Difference {
    /// A key expected (with a non-default value) is not there.
    #[error("{path}: missing")]
    Missing {
        /// Where.
        path: String,
    },
    /// An array of another length.
    #[error("{path}: {want} element(s), got {got}")]
    Length {
        /// Where.
        path: String,
        /// The expected length.
        want: usize,
        /// The length found.
        got: usize,
    },
    /// Another value.
    #[error("{path}: expected {want}, got {got}")]
    Value {
        /// Where.
        path: String,
        /// The expected value.
        want: Json,
        /// The value found.
        got: Json,
    },
}

/// Whether `got` contains `want`: objects key by key (extra keys in `got` are fine), arrays
/// element by element with equal lengths, `"*"` matches anything present, numbers match their
/// string forms (proto3 JSON prints 64-bit integers as strings). Returns the path of the first
/// difference.
pub fn subset(want: &Json, got: &Json) -> Result<(), Difference> {
    walk(want, got, "$")
}

fn walk(want: &Json, got: &Json, path: &str) -> Result<(), Difference> {
    match (want, got) {
        (Json::String(w), _) if w == "*" => Ok(()),
        (Json::Object(w), Json::Object(g)) => {
            for (key, wv) in w {
                let sub = format!("{path}.{key}");
                match g.get(key) {
                    Some(gv) => walk(wv, gv, &sub)?,
                    None if is_default(wv) => {}
                    None => return Err(Difference::Missing { path: sub }),
                }
            }
            Ok(())
        }
        (Json::Array(w), Json::Array(g)) => {
            if w.len() != g.len() {
                return Err(Difference::Length {
                    path: path.to_owned(),
                    want: w.len(),
                    got: g.len(),
                });
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                walk(wv, gv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Json::Number(w), Json::String(g)) if w.to_string() == *g => Ok(()),
        (Json::String(w), Json::Number(g)) if *w == g.to_string() => Ok(()),
        (w, g) if w == g => Ok(()),
        (w, g) => Err(Difference::Value {
            path: path.to_owned(),
            want: w.clone(),
            got: g.clone(),
        }),
    }
}

/// proto3 JSON omits default values: an expected default matches a missing key.
fn is_default(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::Bool(b) => !b,
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
    }
}

/// Replaces the values of `keys` anywhere in `value` with `<normalized>`.
pub fn normalize(value: &mut Json, keys: &[String]) {
    match value {
        Json::Object(map) => {
            for (key, v) in map.iter_mut() {
                if keys.iter().any(|k| k == key) {
                    *v = Json::String("<normalized>".into());
                } else {
                    normalize(v, keys);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| normalize(v, keys)),
        _ => {}
    }
}

/// An errno by name (`ENOSPC`).
pub fn errno(name: &str) -> Result<Errno, FormatError> {
    (1..200)
        .map(Errno::from_raw)
        .find(|e| format!("{e:?}") == name)
        .ok_or_else(|| FormatError::UnknownErrno(name.to_owned()))
}

/// A seam operation by name (`Mount`, `SysfsWrite`).
pub fn op(name: &str) -> Result<Op, FormatError> {
    Op::ALL
        .into_iter()
        .find(|op| format!("{op:?}") == name)
        .ok_or_else(|| {
            let all: Vec<String> = Op::ALL.iter().map(|o| format!("{o:?}")).collect();
            FormatError::UnknownOp {
                name: name.to_owned(),
                all: all.join(", "),
            }
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn subsets_ignore_extra_keys_and_match_numbers_to_strings() {
        let got = json!({"a": 1, "b": {"c": "7", "d": [1, 2]}, "e": "x"});
        subset(&json!({"b": {"c": 7}}), &got).unwrap();
        subset(&json!({"b": {"d": [1, 2]}, "e": "*"}), &got).unwrap();
        subset(&json!({"missing_default": 0}), &got).unwrap();
        assert_eq!(
            subset(&json!({"b": {"d": [1]}}), &got)
                .unwrap_err()
                .to_string(),
            "$.b.d: 1 element(s), got 2"
        );
        assert_eq!(
            subset(&json!({"e": "y"}), &got).unwrap_err().to_string(),
            "$.e: expected \"y\", got \"x\""
        );
        assert_eq!(
            subset(&json!({"z": 1}), &got),
            Err(Difference::Missing { path: "$.z".into() })
        );
    }

    #[test]
    fn names_resolve() {
        assert_eq!(errno("ENOSPC").unwrap(), Errno::ENOSPC);
        assert!(matches!(errno("ENOPE"), Err(FormatError::UnknownErrno(n)) if n == "ENOPE"));
        assert_eq!(op("SysfsWrite").unwrap(), Op::SysfsWrite);
        let unknown = op("Nope").unwrap_err().to_string();
        assert!(
            unknown.starts_with("unknown op \"Nope\"; one of "),
            "{unknown}"
        );
        assert!(unknown.contains("SysfsWrite"), "{unknown}");
    }
}
