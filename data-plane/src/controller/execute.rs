//! `execute`: a command, validated against the committed image, becomes records and a result.
//!
//! This file holds the dispatch, the limits, and the broker lifecycle; topic, partition and
//! config commands are in [`super::topics`].
//!
//! # Broker lifecycle (KIP-631)
//!
//! ```text
//! RegisterBroker ──▶ FENCED ──UnfenceBroker──▶ UNFENCED ──ControlledShutdown──▶ SHUTTING DOWN
//!                      ▲  (heartbeat offset ≥ epoch)  │                              │
//!                      └────────FenceBroker (session expired) ◀──────────────────────┘
//! ```
//!
//! - **Register**: the broker epoch is the metadata offset of the registration. A broker id
//!   registered by another incarnation that is not fenced is refused with
//!   DUPLICATE_BROKER_REGISTRATION (Kafka checks for a live session; the fenced flag is the
//!   deterministic stand-in). Re-registering an unfenced broker first moves its leadership
//!   away, as fencing does, because the new registration starts fenced.
//! - **Unfence**: the epoch must match (STALE_BROKER_EPOCH otherwise). Partitions left without
//!   a leader whose ISR holds the broker elect it (Kafka's `handleBrokerUnfenced`).
//! - **Fence**, **controlled shutdown** and **unregister** take the broker out of every ISR it
//!   is in and move leadership to the first other replica, in replica order, that is in the
//!   ISR and usable (unfenced, not shutting down). When the broker is the last ISR member it
//!   stays in the ISR and the partition's leader becomes -1, as Kafka does without ELR. Every
//!   such change is one `PartitionChange`, written before the broker's own record.
//! - A broker in controlled shutdown may stop once it leads nothing
//!   ([`MetadataImage::leader_count`]); with the rules above that is as soon as the command
//!   commits.

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::command::{ApiError, Command, CommandResult, ProducerIdBlock};
use super::image::{BrokerRegistration, MetadataImage};
use super::records::{BrokerEpoch, LeaderChange, Listener, NO_LEADER, Record};
use super::topics;
use crate::metadata::NodeId;
use crate::metadata::local::TopicDefaults;

/// Producer ids handed out per AllocateProducerIds, as Kafka's controller does.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// Cluster-wide defaults and limits that decide what commands do.
///
/// They are an input of [`execute`], so every voter must run with the same limits, and the log
/// is replayed with the limits of the replaying process. The shell should therefore fill in
/// defaults (partition count, replication factor) before proposing, so that a command means
/// the same thing whenever it is executed.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Topic defaults (`num.partitions`, `default.replication.factor`, topic config defaults)
    /// and the per-request partition bound (default 10,000).
    pub topics: TopicDefaults,
    /// Producer ids per block.
    pub producer_id_block_size: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            topics: TopicDefaults::default(),
            producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        }
    }
}

/// Executes `command` against `image`, as the batch at metadata offset `offset`.
///
/// Returns the records to apply (in order, all at `offset`) and the proposer's result. Pure
/// and deterministic: the same image, offset, command and limits always give the same output.
/// A refused command, a validate-only one, or one that changes nothing yields no records.
pub fn execute(
    image: &MetadataImage,
    offset: u64,
    command: &Command,
    limits: &Limits,
) -> (Vec<Record>, CommandResult) {
    assert!(
        offset > image.offset(),
        "command at offset {offset} executed on an image at {}",
        image.offset()
    );
    let mut records = Vec::new();
    let out = &mut records;
    let result = match command {
        Command::RegisterBroker {
            broker_id,
            incarnation_id,
            listeners,
            rack,
            cluster_id,
        } => {
            let registration = Registration {
                broker_id: *broker_id,
                incarnation_id: *incarnation_id,
                listeners,
                rack,
                cluster_id,
            };
            CommandResult::RegisterBroker(register_broker(image, offset, &registration, out))
        }
        Command::UnfenceBroker {
            broker_id,
            broker_epoch,
        } => CommandResult::UnfenceBroker(unfence_broker(image, *broker_id, *broker_epoch, out)),
        Command::FenceBroker {
            broker_id,
            broker_epoch,
        } => CommandResult::FenceBroker(fence_broker(image, *broker_id, *broker_epoch, out)),
        Command::ControlledShutdown {
            broker_id,
            broker_epoch,
        } => CommandResult::ControlledShutdown(controlled_shutdown(
            image,
            *broker_id,
            *broker_epoch,
            out,
        )),
        Command::UnregisterBroker { broker_id } => {
            CommandResult::UnregisterBroker(unregister_broker(image, *broker_id, out))
        }
        Command::AllocateProducerIds {
            broker_id,
            broker_epoch,
        } => CommandResult::AllocateProducerIds(allocate_producer_ids(
            image,
            *broker_id,
            *broker_epoch,
            limits,
            out,
        )),
        Command::SetFeatureLevel { name, level } => {
            CommandResult::SetFeatureLevel(set_feature_level(image, name, *level, out))
        }
        Command::NoOp => {
            out.push(Record::NoOp);
            CommandResult::NoOp
        }
        _ => topics::execute(image, offset, command, limits, out),
    };
    (records, result)
}

/// Refuses, before it is proposed, a command that could never succeed whatever the image: a
/// CreateTopics over the partition bound. The shell calls this so such a request does not
/// even reach the log; [`execute`] applies the same rule.
pub fn precheck(command: &Command, limits: &Limits) -> Option<CommandResult> {
    match command {
        Command::CreateTopics { topics, .. } => topics::over_partition_bound(topics, limits)
            .map(|e| CommandResult::CreateTopics(topics.iter().map(|_| Err(e.clone())).collect())),
        _ => None,
    }
}

/// The fields of [`Command::RegisterBroker`].
struct Registration<'a> {
    /// Node id.
    broker_id: NodeId,
    /// Process incarnation.
    incarnation_id: Uuid,
    /// Advertised listeners.
    listeners: &'a [Listener],
    /// Rack.
    rack: &'a Option<String>,
    /// The broker's cluster id.
    cluster_id: &'a str,
}

/// Registers a broker, fenced, with the offset as its new epoch.
fn register_broker(
    image: &MetadataImage,
    offset: u64,
    request: &Registration,
    out: &mut Vec<Record>,
) -> Result<BrokerEpoch, ApiError> {
    if request.cluster_id != image.cluster_id() {
        return Err(ApiError::new(
            ResponseError::InconsistentClusterId,
            format!(
                "Expected cluster ID {}, but got cluster ID {}",
                image.cluster_id(),
                request.cluster_id
            ),
        ));
    }
    if request.broker_id < 0 {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("Broker id {} is negative.", request.broker_id),
        ));
    }
    if let Some(existing) = image.broker(request.broker_id) {
        if existing.incarnation_id != request.incarnation_id && !existing.fenced {
            return Err(ApiError::new(
                ResponseError::DuplicateBrokerRegistration,
                format!(
                    "Another broker is registered with broker id {} (incarnation {}).",
                    request.broker_id, existing.incarnation_id
                ),
            ));
        }
        if !existing.fenced {
            move_leadership_away(image, request.broker_id, out);
        }
    }
    let broker_epoch = BrokerEpoch::try_from(offset).expect("metadata offsets fit in an i64");
    out.push(Record::RegisterBroker {
        broker_id: request.broker_id,
        incarnation_id: request.incarnation_id,
        broker_epoch,
        listeners: request.listeners.to_vec(),
        rack: request.rack.clone(),
        fenced: true,
    });
    Ok(broker_epoch)
}

/// The registered broker `id`, if `epoch` is its current epoch.
fn current_broker(
    image: &MetadataImage,
    id: NodeId,
    epoch: BrokerEpoch,
) -> Result<&BrokerRegistration, ApiError> {
    let broker = image.broker(id).ok_or_else(|| {
        ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            format!("Broker {id} is not registered."),
        )
    })?;
    if broker.broker_epoch != epoch {
        return Err(ApiError::new(
            ResponseError::StaleBrokerEpoch,
            format!(
                "Expected broker epoch {}, but got broker epoch {epoch}",
                broker.broker_epoch
            ),
        ));
    }
    Ok(broker)
}

/// Unfences a caught-up broker and lets it lead the partitions that have no leader.
fn unfence_broker(
    image: &MetadataImage,
    id: NodeId,
    epoch: BrokerEpoch,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    if !current_broker(image, id, epoch)?.fenced {
        return Ok(());
    }
    out.push(Record::UnfenceBroker {
        broker_id: id,
        broker_epoch: epoch,
    });
    for topic in image.topics() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            if partition.leader == NO_LEADER && partition.isr.contains(&id) {
                out.push(Record::PartitionChange {
                    topic_id: topic.id,
                    partition: index as i32,
                    isr: None,
                    leader: LeaderChange::Broker(id),
                    replicas: None,
                });
            }
        }
    }
    Ok(())
}

/// Fences a broker whose session expired.
fn fence_broker(
    image: &MetadataImage,
    id: NodeId,
    epoch: BrokerEpoch,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    if current_broker(image, id, epoch)?.fenced {
        return Ok(());
    }
    move_leadership_away(image, id, out);
    out.push(Record::FenceBroker {
        broker_id: id,
        broker_epoch: epoch,
    });
    Ok(())
}

/// Marks a broker as shutting down and moves its leadership away. A fenced broker may stop
/// right away, so it needs no records.
fn controlled_shutdown(
    image: &MetadataImage,
    id: NodeId,
    epoch: BrokerEpoch,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    let broker = current_broker(image, id, epoch)?;
    if broker.fenced || broker.in_controlled_shutdown {
        return Ok(());
    }
    out.push(Record::BrokerControlledShutdown {
        broker_id: id,
        broker_epoch: epoch,
    });
    move_leadership_away(image, id, out);
    Ok(())
}

/// Removes a broker for good, after moving its leadership away.
fn unregister_broker(
    image: &MetadataImage,
    id: NodeId,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    let broker = image.broker(id).ok_or_else(|| {
        ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            format!("Broker {id} is not registered."),
        )
    })?;
    move_leadership_away(image, id, out);
    out.push(Record::UnregisterBroker {
        broker_id: id,
        broker_epoch: broker.broker_epoch,
    });
    Ok(())
}

/// Takes `broker` out of every ISR it is in and moves the leadership it holds, as described in
/// the module docs.
fn move_leadership_away(image: &MetadataImage, broker: NodeId, out: &mut Vec<Record>) {
    let usable = |id: NodeId| id != broker && image.broker(id).is_some_and(|b| b.is_usable());
    for topic in image.topics() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            if !partition.isr.contains(&broker) {
                continue;
            }
            let isr: Vec<NodeId> = partition
                .isr
                .iter()
                .copied()
                .filter(|&id| id != broker)
                .collect();
            if isr.is_empty() {
                // The last ISR member stays (Kafka without ELR); the partition goes offline.
                if partition.leader == broker {
                    out.push(Record::PartitionChange {
                        topic_id: topic.id,
                        partition: index as i32,
                        isr: None,
                        leader: LeaderChange::None,
                        replicas: None,
                    });
                }
                continue;
            }
            let leader = if partition.leader == broker || partition.leader == NO_LEADER {
                let elected = partition
                    .replicas
                    .iter()
                    .copied()
                    .find(|id| isr.contains(id) && usable(*id));
                match elected {
                    Some(id) => LeaderChange::Broker(id),
                    None if partition.leader == NO_LEADER => LeaderChange::Unchanged,
                    None => LeaderChange::None,
                }
            } else {
                LeaderChange::Unchanged
            };
            out.push(Record::PartitionChange {
                topic_id: topic.id,
                partition: index as i32,
                isr: Some(isr),
                leader,
                replicas: None,
            });
        }
    }
}

/// Hands the broker the next block of producer ids.
fn allocate_producer_ids(
    image: &MetadataImage,
    id: NodeId,
    epoch: BrokerEpoch,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> Result<ProducerIdBlock, ApiError> {
    current_broker(image, id, epoch)?;
    let first = image.next_producer_id();
    let size = limits.producer_id_block_size;
    assert!(size > 0, "the producer id block size must be positive");
    let next = first.checked_add(i64::from(size)).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownServerError,
            "The cluster has handed out every producer id.",
        )
    })?;
    out.push(Record::ProducerIds {
        broker_id: id,
        broker_epoch: epoch,
        next_producer_id: next,
    });
    Ok(ProducerIdBlock { first, size })
}

/// Finalizes a feature level.
fn set_feature_level(
    image: &MetadataImage,
    name: &str,
    level: i16,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            "A feature name must not be empty.",
        ));
    }
    if level < 0 {
        return Err(ApiError::new(
            ResponseError::InvalidUpdateVersion,
            format!("Feature level {level} of {name} is negative."),
        ));
    }
    if image.feature_level(name) != level {
        out.push(Record::FeatureLevel {
            name: name.to_string(),
            level,
        });
    }
    Ok(())
}
