//! Kafka's configs as Ferry serves them, in one table, and the id types every crate shares.
//!
//! Operators, clients and the control plane speak Kafka's config names (`num.partitions`,
//! `log.retention.ms`, `retention.ms`, …). [`CATALOG`] says, once per config: its name, its
//! scope (a broker config, a topic config, or a broker config whose value is the default of a
//! topic config: Kafka's synonym, `log.retention.ms` → `retention.ms`), its type, its default,
//! the values it accepts, how Ferry serves it (fixed per node, read at startup, dynamic, or
//! accepted without effect) and one sentence of documentation. Everything else derives from it:
//!
//! ```text
//! ferry-data-plane  broker/config.rs        the broker's startup properties (typed settings)
//!                   broker/configs.rs       DescribeConfigs: values, defaults, synonyms, docs
//!                   metadata/topic_config   CreateTopics / AlterConfigs topic validation
//!                   metadata/broker_configs dynamic broker configs (read-only refusals)
//!                   log/config.rs           a partition log's settings
//!                   group/mod.rs            the group coordinator's settings
//! ferry-control-plane configuration.rs      a configuration's server.properties, checked
//!                   spec.rs                 a cluster's broker_config, checked
//! ```
//!
//! The crate is pure and small (no runtime, no wire codec) so the control plane can check a
//! configuration without linking the data plane. [`ids`] holds the id types (`NodeId`, …) for
//! the same reason: one definition, one width, no heavy dependency.

pub mod ids;

use std::fmt;

/// Why a config value (or name) was refused; names the config so callers can report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for configuration {name}: {reason}")]
pub struct ConfigError {
    /// The Kafka config name.
    pub name: String,
    /// The value given.
    pub value: String,
    /// Why it was refused, as a sentence fragment.
    pub reason: String,
}

impl ConfigError {
    fn new(name: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Kafka's `ConfigSource` codes (DescribeConfigs).
pub mod source {
    /// A topic's own override.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// Set dynamically for one broker.
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    /// Set dynamically as the cluster-wide default.
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    /// From the broker's startup configuration.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// A config's type, as Kafka's `ConfigType` names it (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `true` or `false`.
    Boolean,
    /// Free text or one of a set of words.
    String,
    /// A 32-bit integer.
    Int,
    /// A 16-bit integer.
    Short,
    /// A 64-bit integer.
    Long,
    /// Comma-separated words.
    List,
}

impl Type {
    /// Kafka's `ConfigType` code.
    pub const fn code(self) -> i8 {
        match self {
            Type::Boolean => 1,
            Type::String => 2,
            Type::Int => 3,
            Type::Short => 4,
            Type::Long => 5,
            Type::List => 7,
        }
    }

    /// The integer range of the type (the whole i64 for non-integers).
    const fn bounds(self) -> (i64, i64) {
        match self {
            Type::Int => (i32::MIN as i64, i32::MAX as i64),
            Type::Short => (i16::MIN as i64, i16::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        }
    }
}

/// Where a config applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A broker config only.
    Broker,
    /// A topic config only.
    Topic,
    /// A broker config whose value is the default of topic config `topic` (Kafka's synonym:
    /// `log.retention.ms` is the default of `retention.ms`).
    Both {
        /// The topic config's name.
        topic: &'static str,
    },
}

/// How Ferry serves a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Set by Ferry for each node (its id); no configuration may set it.
    Fixed,
    /// Read at startup; DescribeConfigs reports it read-only and changing it dynamically is
    /// refused.
    Static,
    /// Changes take effect without a restart: topic overrides, and broker configs set
    /// cluster-wide or per broker (Kafka's dynamically updatable broker configs that Ferry
    /// applies).
    Dynamic,
    /// A topic config accepted (and its value checked) for compatibility, without effect in
    /// Ferry; DescribeConfigs does not list it.
    Ignored,
}

/// A config's default value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// None (the node ids: each node has its own).
    None,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Text (a string or a list).
    Text(&'static str),
}

/// The values a config accepts beyond its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Any value of the type.
    Any,
    /// An integer at least this.
    AtLeast(i64),
    /// One of these words (each element, for a list). `refused` are words Kafka takes that
    /// Ferry refuses, each with why.
    OneOf {
        /// The accepted words.
        accepted: &'static [&'static str],
        /// Kafka's words Ferry refuses, with the reason given.
        refused: &'static [(&'static str, &'static str)],
    },
}

/// One config Ferry knows: the row of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Kafka's name (the broker name, for a config with a topic synonym).
    pub name: &'static str,
    /// Where it applies.
    pub scope: Scope,
    /// Its type.
    pub kind: Type,
    /// Its default.
    pub default: DefaultValue,
    /// What values it accepts beyond its type.
    pub check: Check,
    /// How Ferry serves it.
    pub mode: Mode,
    /// Whether controllers read it (the topic defaults the active controller fills into
    /// CreateTopics, the unclean election default); `false` for broker-only settings, whose
    /// change leaves controllers running.
    pub controllers: bool,
    /// One sentence, sent when DescribeConfigs asks for documentation.
    pub doc: &'static str,
}

const fn row(name: &'static str, kind: Type, default: DefaultValue, doc: &'static str) -> Config {
    Config {
        name,
        scope: Scope::Broker,
        kind,
        default,
        check: Check::Any,
        mode: Mode::Static,
        controllers: true,
        doc,
    }
}

impl Config {
    const fn synonym(mut self, topic: &'static str) -> Self {
        self.scope = Scope::Both { topic };
        self.mode = Mode::Dynamic;
        self
    }
    const fn topic(mut self) -> Self {
        self.scope = Scope::Topic;
        self.mode = Mode::Ignored;
        self
    }
    const fn at_least(mut self, min: i64) -> Self {
        self.check = Check::AtLeast(min);
        self
    }
    const fn one_of(
        mut self,
        accepted: &'static [&'static str],
        refused: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.check = Check::OneOf { accepted, refused };
        self
    }
    const fn fixed(mut self) -> Self {
        self.mode = Mode::Fixed;
        self
    }
    const fn broker_only(mut self) -> Self {
        self.controllers = false;
        self
    }
}

use DefaultValue::{Bool, Int, Text};
use Type::{Boolean, Int as INT, List, Long, Short, String as STRING};

const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;
const NO_EFFECT: &str = "Accepted for compatibility; it has no effect in Ferry.";
const PRODUCER_ONLY: &str =
    "Ferry stores batches as the producer compressed them (compression.type=producer)";

/// Every config Ferry knows, sorted by name.
#[rustfmt::skip]
pub const CATALOG: &[Config] = &[
    row("auto.create.topics.enable", Boolean, Bool(true),
        "Enable auto creation of topic on the server.").broker_only(),
    row("broker.id", INT, DefaultValue::None,
        "The broker id of this server (the same as node.id).").fixed(),
    row("compression.gzip.level", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("compression.lz4.level", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("compression.type", STRING, Text("producer"),
        "The final compression type of a topic; Ferry keeps batches as the producer sent them \
         (producer).")
        .synonym("compression.type")
        .one_of(&["producer"], &[("gzip", PRODUCER_ONLY), ("snappy", PRODUCER_ONLY),
            ("lz4", PRODUCER_ONLY), ("zstd", PRODUCER_ONLY), ("uncompressed", PRODUCER_ONLY)]),
    row("compression.zstd.level", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("connections.max.idle.ms", Long, Int(600_000),
        "Idle connections timeout: the server socket processor threads close the connections \
         that idle more than this.").at_least(1),
    row("default.replication.factor", Short, Int(1),
        "The replication factor for automatically created topics, and for topics created with \
         -1 as the replication factor.").at_least(1),
    row("delete.retention.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("file.delete.delay.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("follower.replication.throttled.replicas", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("group.initial.rebalance.delay.ms", INT, Int(3000),
        "How long the coordinator waits for more members to join a new (empty) group before \
         the first rebalance.").at_least(0),
    row("group.max.session.timeout.ms", INT, Int(1_800_000),
        "The largest session timeout a group member may ask for.").at_least(0),
    row("group.max.size", INT, Int(1000),
        "The most members a consumer group may have.").at_least(1),
    row("group.min.session.timeout.ms", INT, Int(6000),
        "The smallest session timeout a group member may ask for.").at_least(0),
    row("leader.replication.throttled.replicas", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("local.retention.bytes", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("local.retention.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("log.cleanup.policy", List, Text("delete"),
        "The default cleanup policy for segments beyond the retention window (delete).")
        .synonym("cleanup.policy")
        .one_of(&["delete"], &[("compact", "compaction is not supported yet; use cleanup.policy=delete")]),
    row("log.flush.interval.messages", Long, Int(i64::MAX),
        "The number of messages accumulated on a log partition before messages are flushed to \
         disk.").synonym("flush.messages").at_least(1),
    row("log.flush.interval.ms", Long, Int(i64::MAX),
        "The maximum time in ms that a message in any topic is kept in memory before flushed \
         to disk.").synonym("flush.ms").at_least(0),
    row("log.index.interval.bytes", INT, Int(4096),
        "The interval with which we add an entry to the offset index.")
        .synonym("index.interval.bytes").at_least(0),
    row("log.message.timestamp.type", STRING, Text("CreateTime"),
        "Define whether the timestamp in the message is message create time or log append time.")
        .synonym("message.timestamp.type").one_of(&["CreateTime", "LogAppendTime"], &[]),
    row("log.retention.bytes", Long, Int(-1),
        "The maximum size of the log before deleting it.").synonym("retention.bytes"),
    row("log.retention.check.interval.ms", Long, Int(300_000),
        "The frequency in milliseconds that the log cleaner checks whether any log is eligible \
         for deletion.").at_least(1).broker_only(),
    row("log.retention.ms", Long, Int(WEEK_MS),
        "The number of milliseconds to keep a log file before deleting it; -1 means no time \
         limit.").synonym("retention.ms").at_least(-1),
    row("log.roll.ms", Long, Int(WEEK_MS),
        "The maximum time before a new log segment is rolled out (in milliseconds).")
        .synonym("segment.ms").at_least(1),
    // At least a v0 record's overhead; an INT, which keeps every file position of a segment
    // inside the u32 index entries.
    row("log.segment.bytes", INT, Int(1 << 30),
        "The maximum size of a single log file.").synonym("segment.bytes").at_least(14),
    row("max.compaction.lag.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("max.connections.per.ip", INT, Int(1000),
        "The maximum number of client connections allowed from each ip address; Ferry's \
         default is 1000 (Kafka's is unbounded), and replica fetchers have a reserve beyond it.")
        .at_least(0),
    row("message.downconversion.enable", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("message.format.version", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("message.max.bytes", INT, Int(1_048_588),
        "The largest record batch size allowed by Kafka.").synonym("max.message.bytes").at_least(0),
    row("message.timestamp.after.max.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("message.timestamp.before.max.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("message.timestamp.difference.max.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("min.cleanable.dirty.ratio", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("min.compaction.lag.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("min.insync.replicas", INT, Int(1),
        "The minimum number of replicas that must acknowledge a write for an acks=all write to \
         be considered successful.").synonym("min.insync.replicas").at_least(1),
    row("node.id", INT, DefaultValue::None,
        "The node id of this server in its cluster.").fixed(),
    row("num.partitions", INT, Int(1),
        "The default number of log partitions per topic.").at_least(1),
    row("offset.metadata.max.bytes", INT, Int(4096),
        "The largest metadata string an offset commit may carry.").at_least(0),
    row("offsets.retention.check.interval.ms", Long, Int(600_000),
        "How often the coordinator looks for expired committed offsets.").at_least(1),
    row("offsets.retention.minutes", INT, Int(7 * 24 * 60),
        "How long committed offsets of a group without members are kept.").at_least(1),
    row("offsets.topic.num.partitions", INT, Int(50),
        "The number of partitions of the __consumer_offsets topic (fixed once it exists).")
        .at_least(1),
    row("offsets.topic.replication.factor", Short, Int(3),
        "The replication factor of the __consumer_offsets topic, capped at the live brokers \
         when it is created.").at_least(1),
    row("preallocate", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("producer.id.expiration.ms", Long, Int(86_400_000),
        "The time in ms that a partition keeps an idempotent producer's state after its last \
         batch.").at_least(1),
    row("remote.storage.enable", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("replica.lag.time.max.ms", Long, Int(30_000),
        "If a follower has not caught up to the leader's log end offset for at least this \
         time, the leader removes the follower from the ISR.").at_least(1).broker_only(),
    row("segment.index.bytes", INT, Int(10 * 1024 * 1024), NO_EFFECT).topic().at_least(4),
    row("segment.jitter.ms", STRING, DefaultValue::None, NO_EFFECT).topic(),
    row("unclean.leader.election.enable", Boolean, Bool(false),
        "Whether replicas not in the ISR may be elected as leader as a last resort, even though \
         doing so may result in data loss.").synonym("unclean.leader.election.enable"),
];

/// Pairs of broker configs whose values must be ordered: the first at most the second.
pub const AT_MOST: &[(&str, &str)] = &[(
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
)];

impl Config {
    /// The topic config's name, for a topic config or a broker config with a topic synonym.
    pub const fn topic_name(&self) -> Option<&'static str> {
        match self.scope {
            Scope::Broker => None,
            Scope::Topic => Some(self.name),
            Scope::Both { topic } => Some(topic),
        }
    }

    /// Whether it is a broker config.
    pub const fn is_broker(&self) -> bool {
        !matches!(self.scope, Scope::Topic)
    }

    /// Whether DescribeConfigs reports it read-only (it cannot change without a restart).
    pub fn read_only(&self) -> bool {
        self.mode != Mode::Dynamic
    }

    /// The default in Kafka's string form; `None` for a config without one.
    pub fn default_value(&self) -> Option<String> {
        match self.default {
            DefaultValue::None => None,
            DefaultValue::Bool(b) => Some(b.to_string()),
            DefaultValue::Int(n) => Some(n.to_string()),
            DefaultValue::Text(t) => Some(t.to_string()),
        }
    }

    /// Checks `value` against the config's type and accepted values.
    pub fn validate(&self, value: &str) -> Result<(), ConfigError> {
        match self.kind {
            Type::Boolean => self.boolean(value).map(drop),
            Type::Int | Type::Short | Type::Long => self.int(value).map(drop),
            Type::String | Type::List => self.words(value).map(drop),
        }
    }

    /// `value` as an integer within the type's and the config's bounds.
    pub fn int(&self, value: &str) -> Result<i64, ConfigError> {
        let fail = |reason: String| ConfigError::new(self.name, value, reason);
        let n: i64 = value
            .trim()
            .parse()
            .map_err(|_| fail("not an integer".into()))?;
        let (mut min, max) = self.kind.bounds();
        match self.check {
            Check::AtLeast(at_least) => min = min.max(at_least),
            Check::Any | Check::OneOf { .. } => {}
        }
        if n < min {
            return Err(fail(format!("must be at least {min}")));
        }
        if n > max {
            return Err(fail(format!("must be at most {max}")));
        }
        Ok(n)
    }

    /// `value` as a boolean (`true` or `false`).
    pub fn boolean(&self, value: &str) -> Result<bool, ConfigError> {
        match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::new(self.name, value, "must be true or false")),
        }
    }

    /// `value` as words: the trimmed text (one word) for a string, the trimmed elements for a
    /// list; each one of the accepted words if the config has a set.
    pub fn words<'v>(&self, value: &'v str) -> Result<Vec<&'v str>, ConfigError> {
        let words: Vec<&str> = match self.kind {
            Type::List => value.split(',').map(str::trim).collect(),
            _ => vec![value.trim()],
        };
        if let Check::OneOf { accepted, refused } = self.check {
            for word in &words {
                if accepted.contains(word) {
                    continue;
                }
                let reason = match refused.iter().find(|(w, _)| w == word) {
                    Some((_, why)) => why.to_string(),
                    None => format!("must be {}", one_of(accepted)),
                };
                return Err(ConfigError::new(self.name, value, reason));
            }
        }
        Ok(words)
    }

    /// The default as an integer. Panics for a config without an integer default (the
    /// catalog's tests check every default against its type).
    pub fn default_int(&self) -> i64 {
        match self.default {
            DefaultValue::Int(n) => n,
            other => panic!("{} has no integer default ({other:?})", self.name),
        }
    }

    /// The default as a boolean (panics as [`Config::default_int`]).
    pub fn default_bool(&self) -> bool {
        match self.default {
            DefaultValue::Bool(b) => b,
            other => panic!("{} has no boolean default ({other:?})", self.name),
        }
    }

    /// The default text (panics as [`Config::default_int`]).
    pub fn default_text(&self) -> &'static str {
        match self.default {
            DefaultValue::Text(t) => t,
            other => panic!("{} has no text default ({other:?})", self.name),
        }
    }
}

/// "a", "a or b", "one of a, b, c".
fn one_of(words: &[&str]) -> String {
    match words {
        [one] => one.to_string(),
        [a, b] => format!("{a} or {b}"),
        many => format!("one of {}", many.join(", ")),
    }
}

/// A config by its exact name in the catalog (the broker name of a synonym pair).
pub fn find(name: &str) -> Option<&'static Config> {
    CATALOG.iter().find(|c| c.name == name)
}

/// A broker config by name.
pub fn broker(name: &str) -> Option<&'static Config> {
    find(name).filter(|c| c.is_broker())
}

/// Every broker config, sorted by name.
pub fn broker_configs() -> impl Iterator<Item = &'static Config> {
    CATALOG.iter().filter(|c| c.is_broker())
}

/// The broker config whose value is the default of topic config `topic_name`.
pub fn synonym_of_topic(topic_name: &str) -> Option<&'static Config> {
    CATALOG
        .iter()
        .find(|c| matches!(c.scope, Scope::Both { topic } if topic == topic_name))
}

/// A topic config by its topic name, as a row named by that name (so errors name it).
pub fn topic(name: &str) -> Option<Config> {
    CATALOG
        .iter()
        .find(|c| c.topic_name() == Some(name))
        .map(|c| Config {
            name: c.topic_name().unwrap_or(c.name),
            ..*c
        })
}

/// The topic configs Ferry applies (and DescribeConfigs lists), by topic name, sorted.
pub fn topic_configs() -> Vec<Config> {
    let mut configs: Vec<Config> = CATALOG
        .iter()
        .filter(|c| c.mode != Mode::Ignored)
        .filter_map(|c| topic(c.topic_name()?))
        .collect();
    configs.sort_by_key(|c| c.name);
    configs
}

/// The integer default of broker config `name`, usable in constants; a name without an
/// integer default fails to compile.
pub const fn default_int(name: &str) -> i64 {
    let mut i = 0;
    while i < CATALOG.len() {
        if same(CATALOG[i].name, name)
            && let DefaultValue::Int(n) = CATALOG[i].default
        {
            return n;
        }
        i += 1;
    }
    panic!("no config with an integer default by that name")
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Checks one topic config by its topic name: unknown names and bad values are refused.
pub fn validate_topic(name: &str, value: &str) -> Result<Config, ConfigError> {
    let config =
        topic(name).ok_or_else(|| ConfigError::new(name, value, "unknown topic configuration"))?;
    config.validate(value)?;
    Ok(config)
}

/// Checks one broker config a node's properties may set: unknown names, the ids Ferry sets,
/// and bad values are refused.
pub fn validate_broker(name: &str, value: &str) -> Result<&'static Config, ConfigError> {
    let config = broker(name)
        .ok_or_else(|| ConfigError::new(name, value, "unknown broker configuration"))?;
    if config.mode == Mode::Fixed {
        return Err(ConfigError::new(
            name,
            value,
            "it is set by Ferry for each node",
        ));
    }
    config.validate(value)?;
    Ok(config)
}

/// Checks a whole set of broker configs as a node's properties give them: each one
/// ([`validate_broker`]), then the orders between them ([`AT_MOST`]; a config not given
/// counts at its default).
pub fn validate_broker_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ConfigError> {
    let configs: Vec<(&str, &str)> = configs.into_iter().collect();
    for (name, value) in &configs {
        validate_broker(name, value)?;
    }
    let int = |name: &str| -> Result<i64, ConfigError> {
        let config = broker(name).expect("AT_MOST names catalog configs");
        match configs.iter().rev().find(|(n, _)| *n == name) {
            Some((_, value)) => config.int(value),
            None => Ok(config.default_int()),
        }
    };
    for (low, high) in AT_MOST {
        let (low_value, high_value) = (int(low)?, int(high)?);
        if low_value > high_value {
            return Err(ConfigError::new(
                low,
                &low_value.to_string(),
                format!("must be at most {high} ({high_value})"),
            ));
        }
    }
    Ok(())
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests;
