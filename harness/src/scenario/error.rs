//! Why a scenario step failed ([`ScenarioError`], the harness's counterpart of
//! [`crate::vmm::VmmError`]), and why scenario text could not be read ([`FormatError`]).

use std::path::PathBuf;

use crate::qemu::QemuError;
use crate::vmm::VmmError;

/// Why a step (or the boot before the first one) failed. The text is what the run prints.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The agent, the guest or a stream did not do what the step expected: expected vs got.
    #[error("{0}")]
    Mismatch(String),
    /// Checks of guest state that did not hold, one per line.
    #[error("{0}")]
    Checks(String),
    /// The step asks for something that cannot be done (a bad name, a missing prerequisite).
    #[error("{0}")]
    Invalid(String),
    /// Scenario text the step carries (a nested step, a uevent line, a name) is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The fake VMM refused a hot-plug the step did not expect it to refuse.
    #[error("VMM refused: {0}")]
    Refused(#[source] VmmError),
    /// The fake VMM refused an action.
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The fake guest could not boot or serve.
    #[error("{0}")]
    Boot(String),
    /// The real guest could not be booted or driven (QEMU, QMP, disk images).
    #[error("{}", chain(.0))]
    Qemu(#[from] QemuError),
    /// The real guest's debug console failed or did not answer.
    #[error("debug console: {0}")]
    Console(String),
    /// A stream to or from the agent failed.
    #[error("{what}: {source}")]
    Stream {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// Why scenario text could not be read: a file, a step, a uevent log line, an expectation or
/// a name. Each variant names the file, step, line or field; the text is what the run prints.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A scenario file could not be read.
    #[error("{}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Something in a scenario file is wrong.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What.
        error: Box<FormatError>,
    },
    /// A numbered step of a list is wrong.
    #[error("step {number}: {error}")]
    Step {
        /// Its number, from 1.
        number: usize,
        /// What.
        error: Box<FormatError>,
    },
    /// A step list of a fault sweep (`setup`, `after`) is wrong.
    #[error("{list}: {error}")]
    List {
        /// The key of the list.
        list: &'static str,
        /// What.
        error: Box<FormatError>,
    },
    /// A numbered line of a uevent log is wrong.
    #[error("line {number}: {error}")]
    Line {
        /// Its number, from 1.
        number: usize,
        /// What.
        error: Box<FormatError>,
    },
    /// Not YAML, or not a scenario's shape.
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    /// A step given as a word that is not one.
    #[error("unknown step {0:?}")]
    UnknownStep(String),
    /// A step that is neither a word nor a map.
    #[error("a step is a map with one verb key, `settle` or `baseline`")]
    NotAStep,
    /// A step map without a verb key.
    #[error("no verb; expected one of {}", super::format::VERBS.join(", "))]
    NoVerb,
    /// A step map with more than one verb key.
    #[error("several verbs: {}", .0.join(", "))]
    SeveralVerbs(Vec<String>),
    /// A step whose fields do not fit its verb.
    #[error("{verb}: {error}")]
    Verb {
        /// The verb.
        verb: String,
        /// What serde found.
        error: serde_yaml::Error,
    },
    /// A step without a field its verb needs.
    #[error("{verb} needs `{field}`")]
    MissingField {
        /// The verb.
        verb: &'static str,
        /// The field.
        field: &'static str,
    },
    /// An expectation that has no JSON form.
    #[error("not JSON-compatible: {0}")]
    NotJson(serde_json::Error),
    /// An errno name that is not one (`ENOSPC` is).
    #[error("unknown errno {0:?}")]
    UnknownErrno(String),
    /// A seam operation name that is not one.
    #[error("unknown op {name:?}; one of {all}")]
    UnknownOp {
        /// The name given.
        name: String,
        /// The names there are, comma-separated.
        all: String,
    },
    /// An empty uevent log line.
    #[error("empty uevent line")]
    EmptyUevent,
    /// A uevent line whose header is not `ACTION@DEVPATH`.
    #[error("{0:?} is not ACTION@DEVPATH")]
    UeventHeader(String),
    /// A uevent field that is not `KEY=VALUE`.
    #[error("{0:?} is not KEY=VALUE")]
    UeventField(String),
    /// A uevent `SEQNUM` that is not a number.
    #[error("bad SEQNUM {0:?}")]
    Seqnum(String),
}

impl FormatError {
    /// This error, inside step `number` (from 1).
    pub(super) fn in_step(self, number: usize) -> Self {
        FormatError::Step {
            number,
            error: Box::new(self),
        }
    }
}

impl ScenarioError {
    /// A stream failure while doing `what`.
    pub(super) fn stream(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| ScenarioError::Stream { what, source }
    }
}

/// `err` and its sources, `: `-separated.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::FormatError;
    use crate::scenario::format::parse_steps;

    fn parse(yaml: &str) -> FormatError {
        let steps: Vec<serde_yaml::Value> = serde_yaml::from_str(yaml).unwrap();
        parse_steps(&steps).unwrap_err()
    }

    #[test]
    fn format_errors_name_the_step_and_what_is_wrong() {
        let e = parse("[settle, {delay_uevent: {devpath: /x}}]");
        assert_eq!(e.to_string(), "step 2: delay_uevent needs `by`");
        let FormatError::Step { number: 2, error } = e else {
            panic!("{e:?}");
        };
        assert!(matches!(
            *error,
            FormatError::MissingField {
                verb: "delay_uevent",
                field: "by"
            }
        ));
        assert!(matches!(
            parse("[nap]"),
            FormatError::Step { number: 1, error } if matches!(*error, FormatError::UnknownStep(ref w) if w == "nap")
        ));
        let several = parse("[{call: X, await: y}]").to_string();
        assert_eq!(several, "step 1: several verbs: call, await");
        let verb = parse("[{advance: soon}]").to_string();
        assert!(verb.starts_with("step 1: advance: "), "{verb}");
        assert!(
            parse("[{nothing: 1}]")
                .to_string()
                .contains("no verb; expected one of oom")
        );
    }
}
