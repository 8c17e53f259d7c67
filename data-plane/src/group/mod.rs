//! The classic consumer-group coordinator's sans-IO core.
//!
//! Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, …) is served by the leader of one partition of the internal topic
//! `__consumer_offsets`: the partition `abs(java_string_hashcode(group_id)) % partitions`. Every
//! change to a group or to its committed offsets is a record in that partition, so a new leader
//! rebuilds the groups by replaying it.
//!
//! This module holds everything that decides, and nothing that waits or writes:
//! - [`state`]: one group's membership state machine (rebalances, generations, sessions,
//!   static members), driven by explicit `now` and returning replies to parked requests.
//! - [`coordinator`]: all groups and committed offsets of one offsets partition, offset
//!   validation and retention, and the log records each change produces.
//! - [`records`]: the key/value schemas of `__consumer_offsets` records (Kafka's own, so the
//!   topic reads the same as Kafka's).
//!
//! The I/O shell is `broker/group_coordinator.rs`: it owns the timer, appends the records to the
//! partition log, and answers requests once the high watermark covers them (as acks=all).
//!
//! # Simplifications
//! - Only the classic protocol; no KIP-848 (`ConsumerGroupHeartbeat`) and no transactional
//!   offset commits.
//! - Protocol selection is by vote as in Kafka; ties go to the protocol listed first by the
//!   member with the smallest member id, so the choice is deterministic.
//! - The client's address is not known to the broker's request router, so `client_host` is
//!   reported as `/unknown`.

pub mod coordinator;
#[cfg(test)]
mod golden;
pub mod records;
pub mod state;

/// The internal topic that stores groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Wall-clock milliseconds since the Unix epoch, passed into the core as `now`.
pub use ferry_kafka_config::ids::Millis;

/// A generation of a group: increases by one every time a rebalance completes.
pub type Generation = i32;

/// Identifies a request parked in the state machine (a JoinGroup or SyncGroup waiting for the
/// rebalance) so the shell can route the eventual reply. Chosen by the shell, unique per broker.
pub type ReplyId = u64;

/// Kafka's `String.hashCode()` over the UTF-16 code units of `s`, which decides the offsets
/// partition of a group (`abs(hash) % partitions`).
pub fn java_string_hashcode(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition that coordinates `group_id`, as Kafka computes it
/// (`Utils.abs`, which maps `i32::MIN` to 0, then modulo).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    assert!(
        partitions > 0,
        "the offsets topic has at least one partition"
    );
    let hash = java_string_hashcode(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// Settings of the coordinator, by Kafka's broker config names (defaults, bounds and docs are
/// the catalog's, `ferry_kafka_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOptions {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an
    /// empty group waits for more members, extended by this much per new member up to
    /// the rebalance timeout.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`: smaller session timeouts are refused.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: larger session timeouts are refused.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`: members beyond this are refused with GROUP_MAX_SIZE_REACHED. Kafka's
    /// default is unbounded; Ferry bounds it (every queue has a bound).
    pub max_size: usize,
    /// `offsets.retention.minutes`, in ms: committed offsets of an empty group expire
    /// this long after the group became empty (or, for groups that never had members, after
    /// the commit).
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.replication.factor`, capped by the live brokers when the topic is
    /// created so single-broker clusters work.
    pub offsets_topic_replication_factor: i16,
    /// `offset.metadata.max.bytes`: longer commit metadata is refused with
    /// OFFSET_METADATA_TOO_LARGE.
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupOptions {
    /// The catalog's defaults (`ferry_kafka_config`).
    fn default() -> Self {
        let mut options = Self {
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 0,
            max_session_timeout_ms: 0,
            max_size: 0,
            offsets_retention_ms: 0,
            offsets_retention_check_interval_ms: 0,
            offsets_topic_partitions: 0,
            offsets_topic_replication_factor: 0,
            offset_metadata_max_bytes: 0,
        };
        for config in ferry_kafka_config::broker_configs() {
            if options.config_value(config.name).is_some() {
                options.set(config.name, config.default_int());
            }
        }
        options
    }
}

impl GroupOptions {
    /// Whether `name` is one of the coordinator's broker configs.
    pub fn is_config(name: &str) -> bool {
        Self::default().config_value(name).is_some()
    }

    /// The value of one of these broker configs by Kafka name, as DescribeConfigs reports it;
    /// `None` for a name that is not a group config.
    pub fn config_value(&self, name: &str) -> Option<String> {
        Some(match name {
            "group.initial.rebalance.delay.ms" => self.initial_rebalance_delay_ms.to_string(),
            "group.min.session.timeout.ms" => self.min_session_timeout_ms.to_string(),
            "group.max.session.timeout.ms" => self.max_session_timeout_ms.to_string(),
            "group.max.size" => self.max_size.to_string(),
            "offsets.retention.minutes" => (self.offsets_retention_ms / 60_000).to_string(),
            "offsets.retention.check.interval.ms" => {
                self.offsets_retention_check_interval_ms.to_string()
            }
            "offsets.topic.num.partitions" => self.offsets_topic_partitions.to_string(),
            "offsets.topic.replication.factor" => self.offsets_topic_replication_factor.to_string(),
            "offset.metadata.max.bytes" => self.offset_metadata_max_bytes.to_string(),
            _ => return None,
        })
    }

    /// Sets one broker config by Kafka name; a bad value is refused with a sentence (the
    /// catalog's bounds). The order of the two session timeouts is checked with the whole set
    /// of broker configs ([`ferry_kafka_config::validate_broker_configs`]).
    pub fn apply_config(&mut self, name: &str, value: &str) -> Result<(), String> {
        if !Self::is_config(name) {
            return Err(format!("unknown group config {name:?}"));
        }
        let config = ferry_kafka_config::validate_broker(name, value).map_err(|e| e.to_string())?;
        let n = config.int(value).map_err(|e| e.to_string())?;
        self.set(name, n);
        Ok(())
    }

    /// Sets one config to `n`, a value in the catalog's bounds for it (which fit its field).
    fn set(&mut self, name: &str, n: i64) {
        match name {
            "group.initial.rebalance.delay.ms" => self.initial_rebalance_delay_ms = n,
            "group.min.session.timeout.ms" => self.min_session_timeout_ms = n as i32,
            "group.max.session.timeout.ms" => self.max_session_timeout_ms = n as i32,
            "group.max.size" => self.max_size = n as usize,
            "offsets.retention.minutes" => self.offsets_retention_ms = n.saturating_mul(60_000),
            "offsets.retention.check.interval.ms" => self.offsets_retention_check_interval_ms = n,
            "offsets.topic.num.partitions" => self.offsets_topic_partitions = n as i32,
            "offsets.topic.replication.factor" => self.offsets_topic_replication_factor = n as i16,
            "offset.metadata.max.bytes" => self.offset_metadata_max_bytes = n as usize,
            other => unreachable!("{other} is not a group config"),
        }
    }
}

/// Default of `group.max.size` in Ferry (Kafka's is unbounded), from the catalog.
pub const GROUP_MAX_SIZE_DEFAULT: usize =
    ferry_kafka_config::default_int("group.max.size") as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashcode_matches_java() {
        // Values from java.lang.String#hashCode.
        assert_eq!(java_string_hashcode(""), 0);
        assert_eq!(java_string_hashcode("a"), 97);
        assert_eq!(java_string_hashcode("hello"), 99_162_322);
        assert_eq!(java_string_hashcode("my-group"), -1_906_497_762);
        assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn broker_configs_set_options_and_bad_values_are_refused() {
        let mut options = GroupOptions::default();
        options
            .apply_config("group.initial.rebalance.delay.ms", "0")
            .unwrap();
        options
            .apply_config("offsets.retention.minutes", "2")
            .unwrap();
        assert_eq!(options.initial_rebalance_delay_ms, 0);
        assert_eq!(options.offsets_retention_ms, 120_000);
        assert!(
            options
                .apply_config("offsets.topic.num.partitions", "0")
                .is_err()
        );
        assert!(options.apply_config("group.max.size", "x").is_err());
        assert!(GroupOptions::is_config("offsets.topic.replication.factor"));
    }

    #[test]
    fn partition_is_abs_hash_modulo_partitions() {
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        // Kafka's Utils.abs maps i32::MIN to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        for g in ["a", "b", "group-1", "zz"] {
            assert!((0..7).contains(&partition_for(g, 7)));
        }
    }

    #[test]
    fn every_group_config_is_described_and_round_trips() {
        let defaults = GroupOptions::default();
        let names: Vec<&str> = ferry_kafka_config::broker_configs()
            .map(|c| c.name)
            .filter(|name| GroupOptions::is_config(name))
            .collect();
        assert_eq!(names.len(), 9, "{names:?}");
        for name in names {
            assert!(
                ferry_kafka_config::broker(name).is_some(),
                "{name} is missing from the broker config catalog (DescribeConfigs)"
            );
            let value = defaults.config_value(name).expect("a value");
            let mut applied = GroupOptions::default();
            applied.apply_config(name, &value).unwrap();
            assert_eq!(applied.config_value(name), Some(value), "{name}");
        }
        assert_eq!(defaults.config_value("log.retention.ms"), None);
    }
}
