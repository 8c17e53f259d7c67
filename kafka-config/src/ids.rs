//! Kafka's id types, defined once with their wire widths.
//!
//! Every crate that names a node, an epoch or a producer uses these, so a width is decided in
//! one place. Raft's voter ids (u64, 0 reserved) are a different numbering; `ferry-quorum`
//! converts between the two at its boundary.

/// A node's id in its cluster (Kafka's `node.id`, an INT32 on the wire): controllers and
/// brokers share one numbering; -1 means "none" on the wire.
pub type NodeId = i32;

/// A partition's leader epoch: increases every time the partition's leader changes.
pub type LeaderEpoch = i32;

/// A producer id, handed to brokers in blocks by the controllers.
pub type ProducerId = i64;

/// A producer's epoch, bumped when a producer with the same id starts over.
pub type ProducerEpoch = i16;

/// Wall-clock milliseconds since the Unix epoch, as Kafka's timestamps count them.
pub type Millis = i64;
