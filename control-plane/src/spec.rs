//! The desired shape of a cluster ([`ClusterSpec`]) and its synchronous validation.
//!
//! A CreateCluster call (and later each Update*) carries a spec; the API layer calls [`validate`]
//! before storing anything, so a caller learns about *every* field error at once, not one per
//! round trip (MSK users meet validation errors only after a long retry loop; we don't want
//! that). Each [`FieldViolation`] names its field the way the API does (`broker_count`,
//! `zones[1]`, `tags[team]`, `broker_config[num.partitions]`), ready to become a gRPC
//! `BadRequest` field violation or a REST 400 body.
//!
//! # Rules
//!
//! The rules follow MSK's where MSK has one (see DESIGN.md section 7):
//!
//! - `name`: 1–64 characters of `[A-Za-z0-9-]`.
//! - `kafka_version`: one the deployment offers ([`ValidationContext::kafka_versions`]).
//! - `broker_count`: 1–60, a multiple of the number of zones.
//! - `controller_count`: 3 or 5.
//! - `zones`: at least one; no repeats; each served by at least one registered host.
//! - `storage_per_broker_bytes`: 1 GiB to 16 TiB.
//! - `broker_config`: Kafka broker config names that Ferry's broker understands, with values it
//!   accepts — the very check `ferry node` applies at start, so a spec that validates also
//!   starts.
//! - `tags`: at most 50; keys 1–128 characters, values at most 256; the `ferry:` key prefix is
//!   reserved for the service (as MSK reserves `aws:`).
//!
//! Validation is pure: what it needs to know about the world (registered zones, offered versions)
//! comes in a [`ValidationContext`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ferry_kafka_config::validate_broker_configs;

/// Longest cluster name.
pub const NAME_LEN_MAX: usize = 64;
/// Most brokers in one cluster.
pub const BROKER_COUNT_MAX: u32 = 60;
/// Controller counts a cluster may have: a 3- or 5-voter quorum.
pub const CONTROLLER_COUNTS: [u32; 2] = [3, 5];
/// Least storage per broker: 1 GiB.
pub const STORAGE_PER_BROKER_BYTES_MIN: u64 = 1 << 30;
/// Most storage per broker: 16 TiB (MSK's 16384 GiB).
pub const STORAGE_PER_BROKER_BYTES_MAX: u64 = 16 << 40;
/// Most tags on a cluster.
pub const TAGS_MAX: usize = 50;
/// Longest tag key.
pub const TAG_KEY_LEN_MAX: usize = 128;
/// Longest tag value.
pub const TAG_VALUE_LEN_MAX: usize = 256;
/// Tag keys with this prefix are the service's own.
pub const RESERVED_TAG_PREFIX: &str = "ferry:";

const _: () = assert!(STORAGE_PER_BROKER_BYTES_MIN < STORAGE_PER_BROKER_BYTES_MAX);

/// The desired shape of a cluster, as the user asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ClusterSpec {
    /// The cluster's name, unique in its tenant.
    pub name: String,
    /// The Kafka version the brokers present, e.g. `3.9.0`.
    pub kafka_version: String,
    /// Number of brokers, spread evenly over the zones.
    pub broker_count: u32,
    /// Number of controllers in the metadata quorum.
    pub controller_count: u32,
    /// The zones (failure domains) the cluster spans.
    pub zones: Vec<String>,
    /// Storage reserved for each broker's logs.
    pub storage_per_broker_bytes: u64,
    /// Broker config overrides by Kafka name (`num.partitions`, `log.retention.ms`, …).
    pub broker_config: BTreeMap<String, String>,
    /// User tags.
    pub tags: BTreeMap<String, String>,
    /// The configuration revision whose properties the nodes start with, under
    /// `broker_config` (a name in both takes `broker_config`'s value); `None` for the
    /// defaults. The store checks that it exists in the cluster's tenant.
    #[serde(default)]
    pub configuration: Option<ConfigurationRef>,
}

/// A reference to one revision of a configuration of the cluster's tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ConfigurationRef {
    /// The configuration's id (`cfg-...`).
    pub id: String,
    /// The revision, 1 or above.
    pub revision: u64,
}

impl fmt::Display for ConfigurationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "revision {} of configuration {}", self.revision, self.id)
    }
}

/// What validation needs to know about the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationContext {
    /// Zones served by at least one registered host.
    pub zones_with_hosts: BTreeSet<String>,
    /// Kafka versions this deployment offers.
    pub kafka_versions: BTreeSet<String>,
}

/// One thing wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field, as the API names it: `broker_count`, `zones[1]`, `tags[team]`.
    pub field: String,
    /// What is wrong, as a sentence for a person.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Checks every rule of `spec` and returns all the violations found, in field order.
///
/// # Errors
///
/// The violations, never empty, when any rule is broken.
pub fn validate(
    spec: &ClusterSpec,
    context: &ValidationContext,
) -> Result<(), Vec<FieldViolation>> {
    let mut violations = Vec::new();
    check_name(&spec.name, &mut violations);
    check_kafka_version(&spec.kafka_version, context, &mut violations);
    check_counts(spec, &mut violations);
    check_zones(&spec.zones, context, &mut violations);
    check_storage(spec.storage_per_broker_bytes, &mut violations);
    check_broker_config(&spec.broker_config, &mut violations);
    check_tags(&spec.tags, &mut violations);
    if let Some(configuration) = &spec.configuration {
        check_configuration_ref("configuration", configuration, &mut violations);
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

pub(crate) fn check_name(name: &str, out: &mut Vec<FieldViolation>) {
    let len = name.chars().count();
    if len == 0 || len > NAME_LEN_MAX {
        out.push(FieldViolation::new(
            "name",
            format!("must be 1 to {NAME_LEN_MAX} characters long, not {len}"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        out.push(FieldViolation::new(
            "name",
            format!("may contain only letters, digits and '-', not {bad:?}"),
        ));
    }
}

fn check_kafka_version(version: &str, context: &ValidationContext, out: &mut Vec<FieldViolation>) {
    if !context.kafka_versions.contains(version) {
        let offered: Vec<&str> = context.kafka_versions.iter().map(String::as_str).collect();
        out.push(FieldViolation::new(
            "kafka_version",
            format!(
                "{version:?} is not offered; choose one of: {}",
                offered.join(", ")
            ),
        ));
    }
}

fn check_counts(spec: &ClusterSpec, out: &mut Vec<FieldViolation>) {
    let brokers = spec.broker_count;
    if !(1..=BROKER_COUNT_MAX).contains(&brokers) {
        out.push(FieldViolation::new(
            "broker_count",
            format!("must be between 1 and {BROKER_COUNT_MAX}, not {brokers}"),
        ));
    }
    // Only meaningful with a sane zone list; a bad one has its own violation.
    let zones = spec.zones.iter().collect::<BTreeSet<_>>().len() as u32;
    if brokers > 0 && zones > 0 && !brokers.is_multiple_of(zones) {
        out.push(FieldViolation::new(
            "broker_count",
            format!(
                "must be a multiple of the number of zones ({zones}) so brokers spread evenly, \
                 not {brokers}"
            ),
        ));
    }
    let controllers = spec.controller_count;
    if !CONTROLLER_COUNTS.contains(&controllers) {
        out.push(FieldViolation::new(
            "controller_count",
            format!("must be 3 or 5, not {controllers}"),
        ));
    }
}

fn check_zones(zones: &[String], context: &ValidationContext, out: &mut Vec<FieldViolation>) {
    if zones.is_empty() {
        out.push(FieldViolation::new("zones", "must name at least one zone"));
    }
    let mut seen = BTreeSet::new();
    for (i, zone) in zones.iter().enumerate() {
        let field = format!("zones[{i}]");
        if !seen.insert(zone) {
            out.push(FieldViolation::new(
                field,
                format!("zone {zone:?} is listed more than once"),
            ));
        } else if !context.zones_with_hosts.contains(zone) {
            out.push(FieldViolation::new(
                field,
                format!("no registered host serves zone {zone:?}"),
            ));
        }
    }
}

fn check_storage(bytes: u64, out: &mut Vec<FieldViolation>) {
    if !(STORAGE_PER_BROKER_BYTES_MIN..=STORAGE_PER_BROKER_BYTES_MAX).contains(&bytes) {
        out.push(FieldViolation::new(
            "storage_per_broker_bytes",
            format!(
                "must be between {STORAGE_PER_BROKER_BYTES_MIN} (1 GiB) and \
                 {STORAGE_PER_BROKER_BYTES_MAX} (16 TiB), not {bytes}"
            ),
        ));
    }
}

/// Checks each override with the catalog's checks, as `ferry node` does, one at a time so that
/// every bad override gets its own violation; then all together, for rules across configs.
fn check_broker_config(overrides: &BTreeMap<String, String>, out: &mut Vec<FieldViolation>) {
    let mut all_valid = true;
    for (name, value) in overrides {
        if let Err(why) = validate_broker_configs([(name.as_str(), value.as_str())]) {
            all_valid = false;
            out.push(FieldViolation::new(
                format!("broker_config[{name}]"),
                why.to_string(),
            ));
        }
    }
    if all_valid
        && let Err(why) =
            validate_broker_configs(overrides.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        out.push(FieldViolation::new("broker_config", why.to_string()));
    }
}

/// A configuration reference names a configuration and a revision (whether they exist is the
/// store's to say). `field` is where the request carries it.
pub fn check_configuration_ref(
    field: &str,
    configuration: &ConfigurationRef,
    out: &mut Vec<FieldViolation>,
) {
    if configuration.id.is_empty() {
        out.push(FieldViolation::new(format!("{field}.id"), "is required"));
    }
    if configuration.revision == 0 {
        out.push(FieldViolation::new(
            format!("{field}.revision"),
            "must be 1 or above",
        ));
    }
}

fn check_tags(tags: &BTreeMap<String, String>, out: &mut Vec<FieldViolation>) {
    if tags.len() > TAGS_MAX {
        out.push(FieldViolation::new(
            "tags",
            format!("at most {TAGS_MAX} tags are allowed, not {}", tags.len()),
        ));
    }
    for (key, value) in tags {
        let field = format!("tags[{key}]");
        let key_len = key.chars().count();
        if key_len == 0 || key_len > TAG_KEY_LEN_MAX {
            out.push(FieldViolation::new(
                field.clone(),
                format!("keys must be 1 to {TAG_KEY_LEN_MAX} characters long, not {key_len}"),
            ));
        }
        if key.starts_with(RESERVED_TAG_PREFIX) {
            out.push(FieldViolation::new(
                field.clone(),
                format!("keys starting with {RESERVED_TAG_PREFIX:?} are reserved"),
            ));
        }
        let value_len = value.chars().count();
        if value_len > TAG_VALUE_LEN_MAX {
            out.push(FieldViolation::new(
                field,
                format!("values may be at most {TAG_VALUE_LEN_MAX} characters, not {value_len}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn context() -> ValidationContext {
        ValidationContext {
            zones_with_hosts: ["a", "b", "c"].map(String::from).into(),
            kafka_versions: ["3.8.0", "3.9.0"].map(String::from).into(),
        }
    }

    fn spec() -> ClusterSpec {
        ClusterSpec {
            name: "orders-prod-1".into(),
            kafka_version: "3.9.0".into(),
            broker_count: 3,
            controller_count: 3,
            zones: vec!["a".into(), "b".into(), "c".into()],
            storage_per_broker_bytes: 100 * GIB,
            broker_config: [("num.partitions", "6"), ("log.retention.ms", "86400000")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            tags: [("team", "payments")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            configuration: None,
        }
    }

    /// The violated fields, in order.
    fn fields(spec: &ClusterSpec) -> Vec<String> {
        match validate(spec, &context()) {
            Ok(()) => Vec::new(),
            Err(violations) => violations.into_iter().map(|v| v.field).collect(),
        }
    }

    fn violations(spec: &ClusterSpec) -> Vec<FieldViolation> {
        validate(spec, &context()).unwrap_err()
    }

    #[test]
    fn a_good_spec_passes() {
        assert_eq!(validate(&spec(), &context()), Ok(()));
    }

    #[test]
    fn name_is_1_to_64_letters_digits_and_dashes() {
        for good in ["a", "A-1", &"x".repeat(64)] {
            let s = ClusterSpec {
                name: good.to_string(),
                ..spec()
            };
            assert_eq!(fields(&s), Vec::<String>::new(), "{good:?}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "has space",
            "under_score",
            "dot.ted",
            "ünï",
        ] {
            let s = ClusterSpec {
                name: bad.to_string(),
                ..spec()
            };
            assert_eq!(fields(&s), vec!["name"], "{bad:?}");
        }
        let s = ClusterSpec {
            name: "a b".into(),
            ..spec()
        };
        assert_eq!(
            violations(&s)[0].description,
            "may contain only letters, digits and '-', not ' '"
        );
    }

    #[test]
    fn kafka_version_must_be_offered() {
        let s = ClusterSpec {
            kafka_version: "2.8.1".into(),
            ..spec()
        };
        assert_eq!(
            violations(&s),
            vec![FieldViolation::new(
                "kafka_version",
                "\"2.8.1\" is not offered; choose one of: 3.8.0, 3.9.0"
            )]
        );
    }

    #[test]
    fn brokers_are_1_to_60() {
        for (count, ok) in [(0, false), (3, true), (60, true), (63, false)] {
            let s = ClusterSpec {
                broker_count: count,
                ..spec()
            };
            assert_eq!(fields(&s).is_empty(), ok, "{count} brokers");
        }
        let s = ClusterSpec {
            broker_count: 63,
            ..spec()
        };
        assert_eq!(
            violations(&s)[0].description,
            "must be between 1 and 60, not 63"
        );
    }

    #[test]
    fn brokers_are_a_multiple_of_the_zone_count() {
        let s = ClusterSpec {
            broker_count: 4,
            ..spec()
        };
        assert_eq!(
            violations(&s),
            vec![FieldViolation::new(
                "broker_count",
                "must be a multiple of the number of zones (3) so brokers spread evenly, not 4"
            )]
        );
        let two_zones = ClusterSpec {
            broker_count: 4,
            zones: vec!["a".into(), "b".into()],
            ..spec()
        };
        assert_eq!(fields(&two_zones), Vec::<String>::new());
    }

    #[test]
    fn controllers_are_3_or_5() {
        for (count, ok) in [
            (0, false),
            (1, false),
            (3, true),
            (4, false),
            (5, true),
            (7, false),
        ] {
            let s = ClusterSpec {
                controller_count: count,
                ..spec()
            };
            let expected: Vec<String> = if ok {
                vec![]
            } else {
                vec!["controller_count".into()]
            };
            assert_eq!(fields(&s), expected, "{count} controllers");
        }
    }

    #[test]
    fn zones_are_non_empty_distinct_and_served_by_hosts() {
        let none = ClusterSpec {
            zones: vec![],
            ..spec()
        };
        assert_eq!(fields(&none), vec!["zones"]);

        let repeated = ClusterSpec {
            zones: vec!["a".into(), "b".into(), "a".into()],
            broker_count: 2,
            ..spec()
        };
        assert_eq!(
            violations(&repeated),
            vec![FieldViolation::new(
                "zones[2]",
                "zone \"a\" is listed more than once"
            )]
        );

        let unserved = ClusterSpec {
            zones: vec!["a".into(), "b".into(), "z".into()],
            ..spec()
        };
        assert_eq!(
            violations(&unserved),
            vec![FieldViolation::new(
                "zones[2]",
                "no registered host serves zone \"z\""
            )]
        );
    }

    #[test]
    fn storage_is_1_gib_to_16_tib() {
        for (bytes, ok) in [
            (GIB - 1, false),
            (GIB, true),
            (16 * 1024 * GIB, true),
            (16 * 1024 * GIB + 1, false),
        ] {
            let s = ClusterSpec {
                storage_per_broker_bytes: bytes,
                ..spec()
            };
            assert_eq!(fields(&s).is_empty(), ok, "{bytes} bytes");
        }
    }

    #[test]
    fn broker_config_takes_known_names_and_values_the_broker_accepts() {
        let mut s = spec();
        s.broker_config = [
            ("auto.create.topics.enable", "false"),
            ("default.replication.factor", "3"),
            ("min.insync.replicas", "2"),
            ("log.retention.bytes", "-1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        assert_eq!(fields(&s), Vec::<String>::new());

        s.broker_config = [
            ("no.such.config", "1"),
            ("num.partitions", "0"),
            ("log.retention.ms", "soon"),
            ("auto.create.topics.enable", "false"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let found = violations(&s);
        let found: Vec<&str> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            found,
            vec![
                "broker_config[log.retention.ms]",
                "broker_config[no.such.config]",
                "broker_config[num.partitions]",
            ]
        );
        let unknown = &violations(&s)[1];
        assert!(unknown.description.contains("unknown"), "{unknown}");
    }

    #[test]
    fn tags_follow_msk_limits() {
        let tag = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut s = spec();
        s.tags = [tag(&"k".repeat(128), &"v".repeat(256)), tag("env", "")].into();
        assert_eq!(fields(&s), Vec::<String>::new());

        s.tags = [
            tag("", "empty key"),
            tag(&"k".repeat(129), "long key"),
            tag("long-value", &"v".repeat(257)),
            tag("ferry:owner", "reserved"),
        ]
        .into();
        assert_eq!(
            fields(&s),
            vec![
                "tags[]".to_string(),
                "tags[ferry:owner]".to_string(),
                format!("tags[{}]", "k".repeat(129)),
                "tags[long-value]".to_string(),
            ]
        );

        s.tags = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(
            violations(&s),
            vec![FieldViolation::new(
                "tags",
                "at most 50 tags are allowed, not 51"
            )]
        );
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let s = ClusterSpec {
            name: String::new(),
            kafka_version: "0.8".into(),
            broker_count: 61,
            controller_count: 4,
            zones: vec!["a".into(), "a".into()],
            storage_per_broker_bytes: 0,
            broker_config: [("bogus".to_string(), "1".to_string())].into(),
            tags: [("ferry:x".to_string(), String::new())].into(),
            configuration: None,
        };
        assert_eq!(
            fields(&s),
            vec![
                "name",
                "kafka_version",
                "broker_count",
                "controller_count",
                "zones[1]",
                "storage_per_broker_bytes",
                "broker_config[bogus]",
                "tags[ferry:x]",
            ]
        );
    }
}
