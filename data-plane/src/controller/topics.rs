//! Topic, partition and config commands: CreateTopics, DeleteTopics, CreatePartitions and
//! AlterConfigs, validated as Kafka's controller validates them.
//!
//! Items of one request are validated in order, each seeing the effect of the ones before it
//! (a name created earlier in the request already exists), without cloning the image: the few
//! facts later items need are tracked on the side ([`Pending`]).
//!
//! # Topic ids
//!
//! Kafka draws topic ids at random; a replicated state machine cannot. Ferry derives them from
//! the cluster id, the metadata offset, the topic name and a retry counter, hashed into a
//! UUIDv8, and retries on the (astronomically unlikely) collision with a live topic. The offset
//! makes a deleted topic created again under the same name a different topic.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use super::command::{ApiError, Command, CommandResult, ConfigOp};
use super::execute::Limits;
use super::image::MetadataImage;
use super::placement::Placer;
use super::records::{ConfigResource, Record};
use crate::metadata::{NewTopic, NodeId, PartitionState, Topic, TopicId, TopicRef, validate};

/// [`super::execute`] for topic, partition and config commands.
pub(super) fn execute(
    image: &MetadataImage,
    offset: u64,
    command: &Command,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> CommandResult {
    match command {
        Command::CreateTopics {
            topics,
            validate_only,
        } => CommandResult::CreateTopics(create_topics(
            image,
            offset,
            topics,
            *validate_only,
            limits,
            out,
        )),
        Command::DeleteTopics { topics } => {
            CommandResult::DeleteTopics(delete_topics(image, topics, out))
        }
        Command::CreatePartitions {
            topic,
            new_total_count,
            assignments,
            validate_only,
        } => {
            let request = NewPartitions {
                topic,
                new_total_count: *new_total_count,
                assignments,
            };
            let mut records = Vec::new();
            let result = create_partitions(image, &request, limits, &mut records);
            if !validate_only {
                out.extend(records);
            }
            CommandResult::CreatePartitions(result)
        }
        Command::AlterConfigs {
            resource,
            changes,
            incremental,
            validate_only,
        } => {
            let mut records = Vec::new();
            let result =
                alter_configs(image, resource, changes, *incremental, limits, &mut records);
            if !validate_only {
                out.extend(records);
            }
            CommandResult::AlterConfigs(result)
        }
        _ => unreachable!("broker and counter commands are executed in execute.rs"),
    }
}

/// The partitions a CreateTopics request would create, if it exceeds the per-request bound.
pub(super) fn over_partition_bound(topics: &[NewTopic], limits: &Limits) -> Option<ApiError> {
    let default = limits.topics.num_partitions.max(0) as usize;
    let requested: usize = topics
        .iter()
        .map(|t| match (&t.assignments, t.num_partitions) {
            (a, _) if !a.is_empty() => a.len(),
            (_, Some(n)) => n.max(0) as usize,
            (_, None) => default,
        })
        .sum();
    let max = limits.topics.partitions_per_request_max;
    (requested > max).then(|| {
        ApiError::new(
            ResponseError::PolicyViolation,
            format!(
                "The request would create {requested} partitions, more than the limit of {max} \
                 partitions per request"
            ),
        )
    })
}

/// What earlier items of the same request changed.
#[derive(Default)]
struct Pending {
    /// Names created by earlier items.
    created: BTreeSet<String>,
    /// Ids created by earlier items.
    ids: BTreeSet<TopicId>,
    /// Ids deleted by earlier items.
    deleted: BTreeSet<TopicId>,
}

/// Creates each topic that validates; the rest get their own error.
fn create_topics(
    image: &MetadataImage,
    offset: u64,
    topics: &[NewTopic],
    validate_only: bool,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> Vec<Result<Topic, ApiError>> {
    if let Some(error) = over_partition_bound(topics, limits) {
        return topics.iter().map(|_| Err(error.clone())).collect();
    }
    let mut placer = Placer::new(image);
    let mut pending = Pending::default();
    let mut results = Vec::with_capacity(topics.len());
    for request in topics {
        let mut records = Vec::new();
        let result = plan_topic(image, &mut placer, &pending, request, limits, &mut records);
        let result = result.map(|mut topic| {
            if validate_only {
                topic.id = TopicId::nil();
            } else {
                topic.id = topic_id(image, &pending, offset, &topic.name);
                for record in &mut records {
                    set_topic_id(record, topic.id);
                }
                pending.ids.insert(topic.id);
                out.extend(records);
            }
            pending.created.insert(topic.name.clone());
            topic
        });
        results.push(result);
    }
    results
}

/// Validates one new topic and writes its records (with a nil topic id, filled in later).
fn plan_topic(
    image: &MetadataImage,
    placer: &mut Placer,
    pending: &Pending,
    request: &NewTopic,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> Result<Topic, ApiError> {
    let name = &request.name;
    validate::topic_name(name)?;
    if image.topic_by_name(name).is_some() || pending.created.contains(name) {
        return Err(ApiError::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    no_collision(image, pending, name)?;
    let configs: BTreeMap<String, String> = request.configs.iter().cloned().collect();
    limits.topics.config.with_overrides(&configs)?;
    let partitions = if request.assignments.is_empty() {
        let count = request
            .num_partitions
            .unwrap_or(limits.topics.num_partitions);
        let factor = request
            .replication_factor
            .unwrap_or(limits.topics.default_replication_factor);
        let assignments = placer.place(count, factor)?;
        assignments
            .into_iter()
            .map(|replicas| new_partition(replicas.clone(), replicas))
            .collect()
    } else {
        if request.num_partitions.is_some() || request.replication_factor.is_some() {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. \
                 Both cannot be used at the same time.",
            ));
        }
        let factor = request.assignments[0].len();
        let partitions = manual_partitions(image, &request.assignments, factor, 0)?;
        for partition in &partitions {
            placer.add_load(&partition.replicas);
        }
        partitions
    };
    out.push(Record::Topic {
        name: name.clone(),
        topic_id: TopicId::nil(),
    });
    push_partitions(out, TopicId::nil(), 0, &partitions);
    for (config, value) in &configs {
        out.push(Record::Config {
            resource: ConfigResource::Topic(name.clone()),
            name: config.clone(),
            value: Some(value.clone()),
        });
    }
    Ok(Topic {
        name: name.clone(),
        id: TopicId::nil(),
        partitions,
        configs,
        internal: name.starts_with("__"),
    })
}

/// A new partition on `replicas` with this ISR, led by the first ISR member in replica order.
fn new_partition(replicas: Vec<NodeId>, isr: Vec<NodeId>) -> PartitionState {
    PartitionState {
        leader: isr[0],
        isr,
        replicas,
        leader_epoch: 0,
    }
}

/// Writes `Partition` records for `partitions`, numbered from `first`.
fn push_partitions(
    out: &mut Vec<Record>,
    topic_id: TopicId,
    first: usize,
    partitions: &[PartitionState],
) {
    for (index, partition) in partitions.iter().enumerate() {
        out.push(Record::Partition {
            topic_id,
            partition: (first + index) as i32,
            replicas: partition.replicas.clone(),
            isr: partition.isr.clone(),
            leader: partition.leader,
            leader_epoch: 0,
            partition_epoch: 0,
        });
    }
}

/// Checks a manual assignment as Kafka does: `factor` distinct registered brokers per
/// partition, at least one of them usable; the ISR is the usable replicas, in replica order.
fn manual_partitions(
    image: &MetadataImage,
    assignments: &[Vec<NodeId>],
    factor: usize,
    first: usize,
) -> Result<Vec<PartitionState>, ApiError> {
    let invalid = |message: String| ApiError::new(ResponseError::InvalidReplicaAssignment, message);
    let mut partitions = Vec::with_capacity(assignments.len());
    for (index, replicas) in assignments.iter().enumerate() {
        let partition = first + index;
        let distinct: BTreeSet<_> = replicas.iter().collect();
        if replicas.is_empty() || distinct.len() != replicas.len() {
            return Err(invalid(format!(
                "Partition {partition} has an invalid replica assignment {replicas:?}"
            )));
        }
        if replicas.len() != factor {
            return Err(invalid(format!(
                "The manual partition assignment includes a partition with {} replica(s), but \
                 this is not consistent with previous partitions, which have {factor} replica(s).",
                replicas.len()
            )));
        }
        if let Some(unknown) = replicas.iter().find(|&&b| image.broker(b).is_none()) {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {unknown}, but no such broker \
                 is registered."
            )));
        }
        let isr: Vec<NodeId> = replicas
            .iter()
            .copied()
            .filter(|&b| image.broker(b).is_some_and(|b| b.is_usable()))
            .collect();
        if isr.is_empty() {
            return Err(invalid(format!(
                "All brokers specified in the manual partition assignment for partition \
                 {partition} are fenced or in controlled shutdown."
            )));
        }
        partitions.push(new_partition(replicas.clone(), isr));
    }
    Ok(partitions)
}

/// Kafka refuses a name that differs from an existing one only by `.` versus `_` (see
/// [`validate::no_collision`], which works on the client image).
fn no_collision(image: &MetadataImage, pending: &Pending, name: &str) -> Result<(), ApiError> {
    let normalized = |n: &str| n.replace('.', "_");
    let wanted = normalized(name);
    let existing = image.topics().map(|t| &t.name).chain(&pending.created);
    match existing
        .filter(|n| n.as_str() != name)
        .find(|n| normalized(n) == wanted)
    {
        Some(existing) => Err(ApiError::new(
            ResponseError::InvalidTopicException,
            format!("Topic '{name}' collides with existing topic: {existing}"),
        )),
        None => Ok(()),
    }
}

/// A topic id for `name` created at `offset`; see the module docs.
fn topic_id(image: &MetadataImage, pending: &Pending, offset: u64, name: &str) -> TopicId {
    (0u32..)
        .map(|attempt| {
            let mut input = Vec::with_capacity(name.len() + 64);
            for part in [
                image.cluster_id().as_bytes(),
                &offset.to_be_bytes(),
                name.as_bytes(),
            ] {
                input.extend_from_slice(&(part.len() as u64).to_be_bytes());
                input.extend_from_slice(part);
            }
            input.extend_from_slice(&attempt.to_be_bytes());
            let high = stable_hash(&input, 0x6665_7272_795f_6869); // "ferry_hi"
            let low = stable_hash(&input, 0x6665_7272_795f_6c6f); // "ferry_lo"
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&high.to_be_bytes());
            bytes[8..].copy_from_slice(&low.to_be_bytes());
            uuid::Builder::from_custom_bytes(bytes).into_uuid()
        })
        .find(|id| image.topic(*id).is_none() && !pending.ids.contains(id))
        .expect("some attempt yields an unused id")
}

/// FNV-1a over `bytes` from `seed`, finished with the splitmix64 mixer. Stable across Rust
/// releases and platforms, unlike `std`'s hashers, which topic ids need.
fn stable_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Fills in the topic id of a record written by [`plan_topic`].
fn set_topic_id(record: &mut Record, id: TopicId) {
    match record {
        Record::Topic { topic_id, .. } | Record::Partition { topic_id, .. } => *topic_id = id,
        _ => {}
    }
}

/// Deletes each named topic; unknown ones get UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID.
fn delete_topics(
    image: &MetadataImage,
    topics: &[TopicRef],
    out: &mut Vec<Record>,
) -> Vec<Result<(String, TopicId), ApiError>> {
    let mut pending = Pending::default();
    topics
        .iter()
        .map(|reference| {
            let found = match reference {
                TopicRef::Name(name) => image.topic_by_name(name),
                TopicRef::Id(id) => image.topic(*id),
            }
            .filter(|t| !pending.deleted.contains(&t.id));
            match (found, reference) {
                (Some(topic), _) => {
                    pending.deleted.insert(topic.id);
                    out.push(Record::RemoveTopic { topic_id: topic.id });
                    Ok((topic.name.clone(), topic.id))
                }
                (None, TopicRef::Name(name)) => Err(unknown_topic(name)),
                (None, TopicRef::Id(id)) => Err(ApiError::new(
                    ResponseError::UnknownTopicId,
                    format!("Topic id {id} does not exist."),
                )),
            }
        })
        .collect()
}

/// UNKNOWN_TOPIC_OR_PARTITION for a topic name.
fn unknown_topic(name: &str) -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        format!("Topic '{name}' does not exist."),
    )
}

/// The fields of [`Command::CreatePartitions`].
struct NewPartitions<'a> {
    /// Topic name.
    topic: &'a str,
    /// Partition count after the change.
    new_total_count: i32,
    /// Replicas of each new partition, or empty.
    assignments: &'a [Vec<NodeId>],
}

/// Adds partitions to a topic, placed like a new topic's (same replication factor).
fn create_partitions(
    image: &MetadataImage,
    request: &NewPartitions,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    let topic = image
        .topic_by_name(request.topic)
        .ok_or_else(|| unknown_topic(request.topic))?;
    let current = topic.partitions.len();
    let wanted = request.new_total_count;
    let invalid = |message: String| ApiError::new(ResponseError::InvalidPartitions, message);
    if wanted as i64 == current as i64 {
        return Err(invalid(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    if (wanted as i64) < current as i64 {
        return Err(invalid(format!(
            "The topic {} currently has {current} partition(s); {wanted} would not be an \
             increase.",
            topic.name
        )));
    }
    let added = wanted as usize - current;
    let max = limits.topics.partitions_per_request_max;
    if added > max {
        return Err(ApiError::new(
            ResponseError::PolicyViolation,
            format!(
                "The request would create {added} partitions, more than the limit of {max} \
                 partitions per request"
            ),
        ));
    }
    let factor = topic.partitions[0].replicas.len();
    let partitions = if request.assignments.is_empty() {
        let mut placer = Placer::new(image);
        let assignments = placer.place(added as i32, factor as i16)?;
        let new = |replicas: Vec<NodeId>| new_partition(replicas.clone(), replicas);
        assignments.into_iter().map(new).collect()
    } else if request.assignments.len() != added {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "Attempted to add {added} additional partition(s), but only {} assignment(s) \
                 were specified.",
                request.assignments.len()
            ),
        ));
    } else {
        manual_partitions(image, request.assignments, factor, current)?
    };
    push_partitions(out, topic.id, current, &partitions);
    Ok(())
}

/// Changes the config overrides of one resource.
fn alter_configs(
    image: &MetadataImage,
    resource: &ConfigResource,
    changes: &[(String, ConfigOp)],
    incremental: bool,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    match resource {
        ConfigResource::Topic(name) if image.topic_by_name(name).is_none() => {
            return Err(unknown_topic(name));
        }
        ConfigResource::Broker(id) if *id < 0 => {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Broker id {id} is negative."),
            ));
        }
        _ => {}
    }
    let old = image.configs(resource).cloned().unwrap_or_default();
    let mut new = if incremental {
        old.clone()
    } else {
        BTreeMap::new()
    };
    for (name, op) in changes {
        if name.is_empty() {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                "A config name must not be empty.",
            ));
        }
        match op {
            ConfigOp::Set(value) => new.insert(name.clone(), value.clone()),
            ConfigOp::Delete => new.remove(name),
        };
    }
    if let ConfigResource::Topic(_) = resource {
        limits.topics.config.with_overrides(&new)?;
    }
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        if old.get(name) != new.get(name) {
            out.push(Record::Config {
                resource: resource.clone(),
                name: name.clone(),
                value: new.get(name).cloned(),
            });
        }
    }
    Ok(())
}
