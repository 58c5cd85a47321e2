//! Which confidential-computing guest components the agent starts and exposes
//! (`agent.guest_components_procs=`, `agent.guest_components_rest_api=`).

use std::fmt;
use std::str::FromStr;

/// The features of the guest components' REST API server (Kata's `GuestComponentsFeatures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GuestComponentsRestApi {
    /// `all`.
    All,
    /// `attestation`.
    Attestation,
    /// `resource`: the default.
    #[default]
    Resource,
}

/// The guest-component processes the agent spawns as its children (Kata's
/// `GuestComponentsProcs`). Each implies the ones it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GuestComponentsProcs {
    /// `none`.
    None,
    /// `attestation-agent`.
    AttestationAgent,
    /// `confidential-data-hub`: implies the attestation agent.
    ConfidentialDataHub,
    /// `api-server-rest`: implies the data hub and the attestation agent. The default.
    #[default]
    ApiServerRest,
}

impl GuestComponentsRestApi {
    /// The kebab-case name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestComponentsRestApi::All => "all",
            GuestComponentsRestApi::Attestation => "attestation",
            GuestComponentsRestApi::Resource => "resource",
        }
    }
}

impl GuestComponentsProcs {
    /// The kebab-case name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestComponentsProcs::None => "none",
            GuestComponentsProcs::AttestationAgent => "attestation-agent",
            GuestComponentsProcs::ConfidentialDataHub => "confidential-data-hub",
            GuestComponentsProcs::ApiServerRest => "api-server-rest",
        }
    }
}

/// The text names no guest-components setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {value:?}; expected one of {expected}")]
pub struct GuestComponentsError {
    /// The rejected text.
    pub value: String,
    /// The accepted names.
    pub expected: &'static str,
}

impl FromStr for GuestComponentsRestApi {
    type Err = GuestComponentsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "all" => GuestComponentsRestApi::All,
            "attestation" => GuestComponentsRestApi::Attestation,
            "resource" => GuestComponentsRestApi::Resource,
            _ => {
                return Err(GuestComponentsError {
                    value: s.to_owned(),
                    expected: "all, attestation, resource",
                });
            }
        })
    }
}

impl FromStr for GuestComponentsProcs {
    type Err = GuestComponentsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => GuestComponentsProcs::None,
            "attestation-agent" => GuestComponentsProcs::AttestationAgent,
            "confidential-data-hub" => GuestComponentsProcs::ConfidentialDataHub,
            "api-server-rest" => GuestComponentsProcs::ApiServerRest,
            _ => {
                return Err(GuestComponentsError {
                    value: s.to_owned(),
                    expected: "none, attestation-agent, confidential-data-hub, api-server-rest",
                });
            }
        })
    }
}

impl fmt::Display for GuestComponentsRestApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for GuestComponentsProcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
