//! Topic, partition and config commands: CreateTopics, DeleteTopics, CreatePartitions and
//! AlterConfigs, validated as Kafka's controller validates them.
//!
//! Items of one request are validated in order, each seeing the effect of the ones before it
//! (a name created earlier in the request already exists), without cloning the image: the few
//! facts later items need are tracked on the side (`Pending`).
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
use super::image::MetadataImage;
use super::limits::Limits;
use super::placement::Placer;
use super::records::{ConfigResource, Record};
use crate::metadata::broker_configs;
use crate::metadata::{NewTopic, NodeId, PartitionState, Topic, TopicId, TopicRef, validate};

/// [`super::execute()`] for topic, partition and config commands.
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
        partition_epoch: 0,
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
    match resource {
        ConfigResource::Topic(_) => {
            limits.topics.config.with_overrides(&new)?;
        }
        ConfigResource::Broker(_) | ConfigResource::Cluster => {
            let changed = changes.iter().map(|(name, _)| name.as_str());
            broker_configs::validate_dynamic(changed, &new, &limits.topics.config)?;
        }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::controller::testing::{Cluster, new_topic};

    /// Brokers 1..=6, two in each of racks a, b, c.
    fn six_in_three_racks() -> Cluster {
        Cluster::with_brokers(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")])
    }

    fn create(cluster: &mut Cluster, topics: Vec<NewTopic>) -> (Vec<Record>, Vec<Option<i16>>) {
        let (records, result) = cluster.run(Command::CreateTopics {
            topics,
            validate_only: false,
        });
        let CommandResult::CreateTopics(results) = result else {
            panic!("{result:?}")
        };
        let codes = results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.code))
            .collect();
        (records, codes)
    }

    fn alter(
        cluster: &mut Cluster,
        resource: ConfigResource,
        changes: &[(&str, Option<&str>)],
    ) -> (Vec<Record>, Result<(), ApiError>) {
        let changes = changes
            .iter()
            .map(|(name, value)| {
                let op = value.map_or(ConfigOp::Delete, |v| ConfigOp::Set(v.into()));
                (name.to_string(), op)
            })
            .collect();
        let (records, result) = cluster.run(Command::AlterConfigs {
            resource,
            changes,
            incremental: true,
            validate_only: false,
        });
        let CommandResult::AlterConfigs(result) = result else {
            panic!("{result:?}")
        };
        (records, result)
    }

    #[test]
    fn a_topic_is_placed_rack_diverse_with_balanced_leaders() {
        let mut cluster = six_in_three_racks();
        let topic = cluster.create("orders", 6, 3);
        let image_topic = cluster.image.topic_by_name("orders").unwrap();
        assert_eq!(image_topic.id, topic.id);
        assert_ne!(topic.id, TopicId::nil());
        let rack = |b: &NodeId| cluster.image.broker(*b).unwrap().rack.clone();
        for partition in &image_topic.partitions {
            let racks: BTreeSet<_> = partition.replicas.iter().map(rack).collect();
            assert_eq!(racks.len(), 3, "{partition:?}");
            assert_eq!(partition.isr, partition.replicas);
            assert_eq!(partition.leader, partition.replicas[0]);
            assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
        }
        let leaders: BTreeSet<_> = image_topic.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders.len(), 6, "six partitions, six different leaders");
        // A second topic keeps counting: leaders stay within one of each other.
        cluster.create("payments", 4, 3);
        let counts: Vec<usize> = (1..=6).map(|b| cluster.image.leader_count(b)).collect();
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
    }

    #[test]
    fn each_topic_gets_its_own_error_and_the_rest_are_created() {
        let mut cluster = six_in_three_racks();
        cluster.create("exists", 1, 1);
        let mut bad_config = new_topic("bad-config", 1, 1);
        bad_config.configs = vec![("min.insync.replicas".into(), "0".into())];
        let (records, codes) = create(
            &mut cluster,
            vec![
                new_topic("exists", 1, 1),
                new_topic("bad name", 1, 1),
                new_topic("zero", 0, 1),
                new_topic("rf7", 1, 7),
                bad_config,
                new_topic("o_k", 2, 3),
                new_topic("o_k", 2, 3),
                new_topic("o.k", 1, 1),
            ],
        );
        let e = |error: ResponseError| Some(error.code());
        assert_eq!(
            codes,
            vec![
                e(ResponseError::TopicAlreadyExists),
                e(ResponseError::InvalidTopicException),
                e(ResponseError::InvalidPartitions),
                e(ResponseError::InvalidReplicationFactor),
                e(ResponseError::InvalidConfig),
                None,
                e(ResponseError::TopicAlreadyExists),
                e(ResponseError::InvalidTopicException),
            ]
        );
        assert_eq!(records.len(), 3, "one Topic and two Partition records");
        assert!(cluster.image.topic_by_name("o_k").is_some());
    }

    #[test]
    fn a_request_over_the_partition_bound_is_refused_whole_without_records() {
        let mut cluster = six_in_three_racks();
        let topics = vec![new_topic("a", 6_000, 3), new_topic("b", 4_001, 3)];
        let command = Command::CreateTopics {
            topics: topics.clone(),
            validate_only: false,
        };
        let early = super::super::precheck(&command, &cluster.limits).expect("refused early");
        let (records, result) = cluster.run(command);
        assert!(records.is_empty());
        assert_eq!(result, early);
        let CommandResult::CreateTopics(results) = result else {
            panic!()
        };
        for result in results {
            let error = result.unwrap_err();
            assert_eq!(error.code, ResponseError::PolicyViolation.code());
            assert_eq!(
                error.message,
                "The request would create 10001 partitions, more than the limit of 10000 \
                 partitions per request"
            );
        }
        assert_eq!(cluster.image.topics().count(), 0);
        let fits = Command::CreateTopics {
            topics: vec![new_topic("a", 10_000, 1)],
            validate_only: true,
        };
        assert_eq!(super::super::precheck(&fits, &cluster.limits), None);
    }

    #[test]
    fn validate_only_answers_as_a_creation_would_and_writes_nothing() {
        let mut cluster = six_in_three_racks();
        let (records, result) = cluster.run(Command::CreateTopics {
            topics: vec![new_topic("t", 3, 2), new_topic("bad name", 1, 1)],
            validate_only: true,
        });
        assert!(records.is_empty());
        let CommandResult::CreateTopics(results) = result else {
            panic!()
        };
        let topic = results[0].as_ref().unwrap();
        assert_eq!((topic.id, topic.partitions.len()), (TopicId::nil(), 3));
        assert!(results[1].is_err());
        assert!(cluster.image.topic_by_name("t").is_none());
    }

    #[test]
    fn a_manual_assignment_puts_only_usable_replicas_in_the_isr() {
        let mut cluster = six_in_three_racks();
        cluster.fence(2);
        let manual = |assignments: Vec<Vec<NodeId>>| NewTopic {
            assignments,
            ..new_topic("m", 0, 0)
        };
        let mut plain = manual(vec![vec![2, 3], vec![4, 2]]);
        (plain.num_partitions, plain.replication_factor) = (None, None);
        cluster.run(Command::CreateTopics {
            topics: vec![plain],
            validate_only: false,
        });
        let partitions = cluster.partitions("m");
        assert_eq!(
            (partitions[0].leader, &partitions[0].isr[..]),
            (3, &[3][..])
        );
        assert_eq!(
            (partitions[1].leader, &partitions[1].isr[..]),
            (4, &[4][..])
        );
        let mut bad = |assignments, name: &str| {
            let mut topic = manual(assignments);
            (topic.name, topic.num_partitions, topic.replication_factor) =
                (name.into(), None, None);
            create(&mut cluster, vec![topic]).1[0]
        };
        let invalid = Some(ResponseError::InvalidReplicaAssignment.code());
        assert_eq!(bad(vec![vec![2]], "all-fenced"), invalid);
        assert_eq!(bad(vec![vec![9]], "unknown"), invalid);
        assert_eq!(bad(vec![vec![1, 1]], "repeated"), invalid);
        assert_eq!(bad(vec![vec![1, 3], vec![4]], "uneven"), invalid);
        let both = NewTopic {
            name: "both".into(),
            ..manual(vec![vec![1]])
        };
        assert_eq!(
            create(&mut cluster, vec![both]).1[0],
            Some(ResponseError::InvalidRequest.code())
        );
    }

    #[test]
    fn deleting_topics_removes_them_and_their_configs() {
        let mut cluster = six_in_three_racks();
        let a = cluster.create("a", 2, 3);
        cluster.create("b", 1, 1);
        let retention = [("retention.ms", Some("1"))];
        alter(&mut cluster, ConfigResource::Topic("a".into()), &retention)
            .1
            .unwrap();
        let (records, result) = cluster.run(Command::DeleteTopics {
            topics: vec![
                TopicRef::Name("a".into()),
                TopicRef::Id(a.id),
                TopicRef::Name("nope".into()),
                TopicRef::Id(TopicId::from_u128(7)),
            ],
        });
        assert_eq!(records, vec![Record::RemoveTopic { topic_id: a.id }]);
        let CommandResult::DeleteTopics(results) = result else {
            panic!()
        };
        let codes: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().map_err(|e| e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                Ok(&("a".to_string(), a.id)),
                Err(ResponseError::UnknownTopicId.code()),
                Err(ResponseError::UnknownTopicOrPartition.code()),
                Err(ResponseError::UnknownTopicId.code()),
            ]
        );
        assert!(
            cluster
                .image
                .configs(&ConfigResource::Topic("a".into()))
                .is_none()
        );
        // The same name again is a different topic.
        assert_ne!(cluster.create("a", 1, 1).id, a.id);
    }

    #[test]
    fn create_partitions_only_increases_and_places_like_a_new_topic() {
        let mut cluster = six_in_three_racks();
        cluster.create("t", 2, 3);
        let grow =
            |count: i32, assignments: Vec<Vec<NodeId>>, validate_only| Command::CreatePartitions {
                topic: "t".into(),
                new_total_count: count,
                assignments,
                validate_only,
            };
        let run = |cluster: &mut Cluster, command| match cluster.run(command) {
            (records, CommandResult::CreatePartitions(r)) => (records.len(), r.map_err(|e| e.code)),
            other => panic!("{other:?}"),
        };
        let invalid = Err(ResponseError::InvalidPartitions.code());
        assert_eq!(run(&mut cluster, grow(2, vec![], false)), (0, invalid));
        assert_eq!(run(&mut cluster, grow(1, vec![], false)), (0, invalid));
        assert_eq!(run(&mut cluster, grow(5, vec![], true)), (0, Ok(())));
        let wrong = Err(ResponseError::InvalidReplicaAssignment.code());
        assert_eq!(
            run(&mut cluster, grow(3, vec![vec![1, 3]], false)),
            (0, wrong)
        );
        assert_eq!(run(&mut cluster, grow(5, vec![], false)), (3, Ok(())));
        assert_eq!(
            run(&mut cluster, grow(6, vec![vec![2, 4, 6]], false)),
            (1, Ok(()))
        );
        let partitions = cluster.partitions("t");
        assert_eq!(partitions.len(), 6);
        assert!(partitions.iter().all(|p| p.replicas.len() == 3));
        assert_eq!(partitions[5].replicas, vec![2, 4, 6]);
        let policy = Err(ResponseError::PolicyViolation.code());
        assert_eq!(run(&mut cluster, grow(10_007, vec![], false)), (0, policy));
        let unknown = Command::CreatePartitions {
            topic: "nope".into(),
            new_total_count: 3,
            assignments: vec![],
            validate_only: false,
        };
        assert_eq!(
            run(&mut cluster, unknown),
            (0, Err(ResponseError::UnknownTopicOrPartition.code()))
        );
    }

    #[test]
    fn alter_configs_sets_and_deletes_incrementally_and_validates_topic_configs() {
        let mut cluster = six_in_three_racks();
        cluster.create("t", 1, 1);
        let topic = ConfigResource::Topic("t".into());
        let (records, result) = alter(
            &mut cluster,
            topic.clone(),
            &[
                ("retention.ms", Some("1000")),
                ("min.insync.replicas", Some("2")),
            ],
        );
        assert_eq!((records.len(), result), (2, Ok(())));
        let (records, _) = alter(&mut cluster, topic.clone(), &[("retention.ms", None)]);
        assert_eq!(
            records,
            vec![Record::Config {
                resource: topic.clone(),
                name: "retention.ms".into(),
                value: None
            }]
        );
        let configs = cluster.image.configs(&topic).unwrap();
        assert_eq!(
            configs.keys().collect::<Vec<_>>(),
            vec!["min.insync.replicas"]
        );
        let client = cluster.image.to_client_image(1);
        assert_eq!(client.topics["t"].configs, *configs);
        let (records, result) = alter(
            &mut cluster,
            topic.clone(),
            &[("min.insync.replicas", Some("0"))],
        );
        assert!(records.is_empty());
        assert_eq!(
            result.unwrap_err().code,
            ResponseError::InvalidConfig.code()
        );
        let (_, result) = alter(
            &mut cluster,
            ConfigResource::Topic("nope".into()),
            &[("a", Some("1"))],
        );
        assert_eq!(
            result.unwrap_err().code,
            ResponseError::UnknownTopicOrPartition.code()
        );
        // Broker and cluster configs are checked against the broker config catalog.
        let (records, result) = alter(
            &mut cluster,
            ConfigResource::Broker(1),
            &[("log.retention.ms", Some("60000"))],
        );
        assert_eq!((records.len(), result), (1, Ok(())));
        for (name, value, code) in [
            ("log.cleaner.threads", "2", ResponseError::InvalidConfig),
            ("num.partitions", "3", ResponseError::InvalidRequest),
            ("log.segment.bytes", "1", ResponseError::InvalidConfig),
        ] {
            let (records, result) = alter(
                &mut cluster,
                ConfigResource::Cluster,
                &[(name, Some(value))],
            );
            assert!(records.is_empty(), "{name}");
            assert_eq!(result.unwrap_err().code, code.code(), "{name}");
        }
        assert!(cluster.image.configs(&ConfigResource::Cluster).is_none());
        let client = cluster.image.to_client_image(1);
        assert_eq!(
            client.broker_configs.brokers[&1]["log.retention.ms"],
            "60000"
        );
    }

    #[test]
    fn legacy_alter_configs_replaces_every_override_and_validate_only_writes_nothing() {
        let mut cluster = six_in_three_racks();
        cluster.create("t", 1, 1);
        let topic = ConfigResource::Topic("t".into());
        alter(
            &mut cluster,
            topic.clone(),
            &[("retention.ms", Some("1000"))],
        )
        .1
        .unwrap();
        let replace = |validate_only| Command::AlterConfigs {
            resource: topic.clone(),
            changes: vec![("segment.ms".into(), ConfigOp::Set("5000".into()))],
            incremental: false,
            validate_only,
        };
        let (records, result) = cluster.run(replace(true));
        assert_eq!(
            (records.len(), result),
            (0, CommandResult::AlterConfigs(Ok(())))
        );
        let (records, _) = cluster.run(replace(false));
        assert_eq!(
            records.len(),
            2,
            "retention.ms removed, segment.ms set: {records:?}"
        );
        let configs = cluster.image.configs(&topic).unwrap();
        assert_eq!(configs.keys().collect::<Vec<_>>(), vec!["segment.ms"]);
    }

    #[test]
    fn topic_ids_are_deterministic_and_distinct() {
        let ids = |cluster: &mut Cluster| {
            (0..20)
                .map(|i| cluster.create(&format!("t{i}"), 1, 1).id)
                .collect::<Vec<_>>()
        };
        let first = ids(&mut six_in_three_racks());
        assert_eq!(first, ids(&mut six_in_three_racks()));
        assert_eq!(first.iter().collect::<BTreeSet<_>>().len(), 20);
        assert!(first.iter().all(|id| id.get_version_num() == 8));
    }
}
