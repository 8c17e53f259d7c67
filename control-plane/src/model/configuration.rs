//! A configuration: named broker properties with immutable revisions (MSK's configuration),
//! owned by a tenant and referenced by its clusters (`ClusterSpec::configuration`).
//!
//! Each revision keeps the properties text as the user gave it (what GetConfigurationRevision
//! returns) and the parsed `name → value` map the reconciler hands to the nodes, so nothing is
//! parsed twice and a revision means the same thing forever. An update appends the next
//! revision; none is ever changed or removed, except all of them with the configuration.

use std::collections::BTreeMap;

use super::{Tenant, TimestampMs};

/// A configuration's id, derived from the store's log index at creation: `cfg-<16 hex
/// digits>`.
pub type ConfigurationId = String;

pub use super::limits::REVISIONS_MAX;

/// A configuration as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Configuration {
    /// Unique id, never reused.
    pub id: ConfigurationId,
    /// The owning tenant.
    pub tenant: Tenant,
    /// Its name, unique in the tenant; never changes.
    pub name: String,
    /// The Kafka versions it is meant for; empty for any.
    pub kafka_versions: Vec<String>,
    /// When it was created.
    pub created_at_ms: TimestampMs,
    /// Every revision, oldest first; never empty. Revision `n` is at index `n - 1`.
    pub revisions: Vec<Revision>,
}

impl Configuration {
    /// The newest revision.
    pub fn latest(&self) -> &Revision {
        self.revisions
            .last()
            .expect("a configuration has at least one revision")
    }

    /// Revision `revision`, if it exists.
    pub fn revision(&self, revision: u64) -> Option<&Revision> {
        let index = usize::try_from(revision.checked_sub(1)?).ok()?;
        self.revisions.get(index)
    }
}

/// A configuration without its revisions' properties: what list calls carry, so that a page
/// of configurations stays small however large their revisions are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigurationSummary {
    /// Unique id, never reused.
    pub id: ConfigurationId,
    /// The owning tenant.
    pub tenant: Tenant,
    /// Its name, unique in the tenant.
    pub name: String,
    /// The Kafka versions it is meant for; empty for any.
    pub kafka_versions: Vec<String>,
    /// When it was created.
    pub created_at_ms: TimestampMs,
    /// Its newest revision, without the properties.
    pub latest: RevisionInfo,
}

/// A revision without its properties.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevisionInfo {
    /// 1 for the first, one more per update.
    pub revision: u64,
    /// What it is for, as its author wrote.
    pub description: String,
    /// When it was created.
    pub created_at_ms: TimestampMs,
}

impl Configuration {
    /// The configuration without its revisions' properties.
    pub fn summary(&self) -> ConfigurationSummary {
        ConfigurationSummary {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            kafka_versions: self.kafka_versions.clone(),
            created_at_ms: self.created_at_ms,
            latest: self.latest().info(),
        }
    }
}

impl Revision {
    /// The revision without its properties.
    pub fn info(&self) -> RevisionInfo {
        RevisionInfo {
            revision: self.revision,
            description: self.description.clone(),
            created_at_ms: self.created_at_ms,
        }
    }
}

/// One immutable revision of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    /// 1 for the first, one more per update.
    pub revision: u64,
    /// What it is for, as its author wrote.
    pub description: String,
    /// The properties text as given.
    pub server_properties: String,
    /// The properties, parsed and validated by the API.
    pub properties: BTreeMap<String, String>,
    /// When it was created.
    pub created_at_ms: TimestampMs,
}
