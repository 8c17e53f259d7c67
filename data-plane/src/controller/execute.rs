//! `execute`: a command, validated against the committed image, becomes records and a result.
//!
//! This file holds the dispatch and the broker lifecycle; topic, partition and config commands
//! are in [`super::topics`], and the [`Limits`] both read are in [`super::limits`].
//!
//! # Broker lifecycle (KIP-631)
//!
//! ```text
//! RegisterBroker ─▶ FENCED ─UnfenceBroker─▶ UNFENCED ─ControlledShutdown─▶ SHUTTING DOWN
//!                     ▲    (offset ≥ epoch)     │                               │
//!                     └──── FenceBroker (session expired) ◀─────────────────────┘
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
//! - **Unclean leader election** (`unclean.leader.election.enable`, per topic, off by
//!   default): when the leader goes and no usable ISR member is left, a usable replica outside
//!   the ISR is elected and becomes the whole ISR; and a leaderless partition takes a returning
//!   replica that is not in its ISR. Acknowledged writes the old ISR held beyond that
//!   replica's log are lost, which is why it is off by default.
//! - A broker in controlled shutdown may stop once it leads nothing
//!   ([`MetadataImage::leader_count`]); with the rules above that is as soon as the command
//!   commits.

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::command::{ApiError, Command, CommandResult, ProducerIdBlock};
use super::image::{BrokerRegistration, MetadataImage};
use super::limits::Limits;
use super::records::{BrokerEpoch, ConfigResource, LeaderChange, Listener, NO_LEADER, Record};
use super::{replication, security, topics};
use crate::metadata::NodeId;
use crate::metadata::topic_config::UNCLEAN_LEADER_ELECTION_ENABLE;

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
            CommandResult::RegisterBroker(register_broker(
                image,
                offset,
                &registration,
                limits,
                out,
            ))
        }
        Command::UnfenceBroker {
            broker_id,
            broker_epoch,
        } => CommandResult::UnfenceBroker(unfence_broker(
            image,
            *broker_id,
            *broker_epoch,
            limits,
            out,
        )),
        Command::FenceBroker {
            broker_id,
            broker_epoch,
        } => {
            CommandResult::FenceBroker(fence_broker(image, *broker_id, *broker_epoch, limits, out))
        }
        Command::ControlledShutdown {
            broker_id,
            broker_epoch,
        } => CommandResult::ControlledShutdown(controlled_shutdown(
            image,
            *broker_id,
            *broker_epoch,
            limits,
            out,
        )),
        Command::UnregisterBroker { broker_id } => {
            CommandResult::UnregisterBroker(unregister_broker(image, *broker_id, limits, out))
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
        Command::AlterPartition {
            broker_id,
            broker_epoch,
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            new_isr,
        } => {
            let request = replication::AlterPartition {
                broker_id: *broker_id,
                broker_epoch: *broker_epoch,
                topic_id: *topic_id,
                partition: *partition,
                leader_epoch: *leader_epoch,
                partition_epoch: *partition_epoch,
                new_isr,
            };
            CommandResult::AlterPartition(replication::alter_partition(image, &request, out))
        }
        Command::ElectPreferredLeaders => {
            let changes = replication::preferred_leader_changes(image);
            let count = changes.len();
            out.extend(changes);
            CommandResult::ElectPreferredLeaders(count)
        }
        Command::NoOp => {
            out.push(Record::NoOp);
            CommandResult::NoOp
        }
        Command::AlterScramCredentials {
            deletions,
            upsertions,
        } => security::alter_scram_credentials(image, deletions, upsertions, out),
        Command::CreateAcls { bindings } => security::create_acls(image, bindings, out),
        Command::DeleteAcls { filters } => security::delete_acls(image, filters, out),
        _ => topics::execute(image, offset, command, limits, out),
    };
    (records, result)
}

/// Refuses, before it is proposed, a command that could never succeed whatever the image: a
/// CreateTopics over the partition bound, a security command over its per-request bound. The shell calls this so such a request does not
/// even reach the log; [`execute`] applies the same rule.
pub fn precheck(command: &Command, limits: &Limits) -> Option<CommandResult> {
    match command {
        Command::CreateTopics { topics, .. } => topics::over_partition_bound(topics, limits)
            .map(|e| CommandResult::CreateTopics(topics.iter().map(|_| Err(e.clone())).collect())),
        Command::AlterScramCredentials {
            deletions,
            upsertions,
        } => security::precheck_scram(deletions, upsertions),
        Command::CreateAcls { bindings } => security::acl_request_too_large(bindings.len())
            .map(|e| CommandResult::CreateAcls(bindings.iter().map(|_| Err(e.clone())).collect())),
        Command::DeleteAcls { filters } => security::acl_request_too_large(filters.len())
            .map(|e| CommandResult::DeleteAcls(Err(e))),
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
    limits: &Limits,
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
            move_leadership_away(image, request.broker_id, limits, out);
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
    limits: &Limits,
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
            if partition.leader != NO_LEADER || !partition.replicas.contains(&id) {
                continue;
            }
            let isr = if partition.isr.contains(&id) {
                None
            } else if unclean_election_enabled(image, limits, &topic.name) {
                // Unclean: a replica outside the ISR leads, and alone is the new ISR. What the
                // last ISR members held beyond its log is lost.
                Some(vec![id])
            } else {
                continue;
            };
            out.push(Record::PartitionChange {
                topic_id: topic.id,
                partition: index as i32,
                isr,
                leader: LeaderChange::Broker(id),
                replicas: None,
            });
        }
    }
    Ok(())
}

/// Fences a broker whose session expired.
fn fence_broker(
    image: &MetadataImage,
    id: NodeId,
    epoch: BrokerEpoch,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    if current_broker(image, id, epoch)?.fenced {
        return Ok(());
    }
    move_leadership_away(image, id, limits, out);
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
    limits: &Limits,
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
    move_leadership_away(image, id, limits, out);
    Ok(())
}

/// Removes a broker for good, after moving its leadership away.
fn unregister_broker(
    image: &MetadataImage,
    id: NodeId,
    limits: &Limits,
    out: &mut Vec<Record>,
) -> Result<(), ApiError> {
    let broker = image.broker(id).ok_or_else(|| {
        ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            format!("Broker {id} is not registered."),
        )
    })?;
    move_leadership_away(image, id, limits, out);
    out.push(Record::UnregisterBroker {
        broker_id: id,
        broker_epoch: broker.broker_epoch,
    });
    Ok(())
}

/// Takes `broker` out of every ISR it is in and moves the leadership it holds, as described in
/// the module docs.
fn move_leadership_away(
    image: &MetadataImage,
    broker: NodeId,
    limits: &Limits,
    out: &mut Vec<Record>,
) {
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
            let unclean = || {
                unclean_election_enabled(image, limits, &topic.name)
                    .then(|| {
                        partition
                            .replicas
                            .iter()
                            .copied()
                            .find(|id| !partition.isr.contains(id) && usable(*id))
                    })
                    .flatten()
            };
            if partition.leader == broker
                && !isr.iter().any(|id| usable(*id))
                && let Some(elected) = unclean()
            {
                // Unclean election: no usable ISR member is left, and the topic allows an
                // out-of-sync replica to lead (alone in the new ISR).
                out.push(Record::PartitionChange {
                    topic_id: topic.id,
                    partition: index as i32,
                    isr: Some(vec![elected]),
                    leader: LeaderChange::Broker(elected),
                    replicas: None,
                });
                continue;
            }
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

/// Whether topic `name` allows unclean leader election: its
/// `unclean.leader.election.enable` override, else the dynamic cluster-wide default, else the
/// static default.
fn unclean_election_enabled(image: &MetadataImage, limits: &Limits, name: &str) -> bool {
    image
        .configs(&ConfigResource::Topic(name.to_string()))
        .and_then(|configs| configs.get(UNCLEAN_LEADER_ELECTION_ENABLE))
        .or_else(|| {
            image
                .configs(&ConfigResource::Cluster)
                .and_then(|configs| configs.get(UNCLEAN_LEADER_ELECTION_ENABLE))
        })
        .map_or(
            limits.topics.config.unclean_leader_election_enable,
            |value| value.trim() == "true",
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::image::PartitionImage;
    use crate::controller::testing::{CLUSTER, Cluster, incarnation, listeners, register};

    /// Brokers 1, 2, 3 in racks a, b, c, registered and unfenced.
    fn three_racks() -> Cluster {
        Cluster::with_brokers(&[(1, "a"), (2, "b"), (3, "c")])
    }

    fn code(error: ResponseError) -> i16 {
        error.code()
    }

    fn error_code<T: std::fmt::Debug>(result: Result<T, ApiError>) -> i16 {
        result.unwrap_err().code
    }

    #[test]
    fn a_registered_broker_starts_fenced_with_its_registration_offset_as_epoch() {
        let mut cluster = Cluster::new();
        let (records, result) = cluster.run(register(1, Some("a")));
        assert_eq!(result, CommandResult::RegisterBroker(Ok(1)));
        assert_eq!(
            records,
            vec![Record::RegisterBroker {
                broker_id: 1,
                incarnation_id: incarnation(1, 1),
                broker_epoch: 1,
                listeners: listeners(1),
                rack: Some("a".into()),
                fenced: true,
            }]
        );
        assert!(cluster.image.broker(1).unwrap().fenced);
        assert!(cluster.image.to_client_image(1).brokers.is_empty());
    }

    #[test]
    fn unfencing_needs_the_current_broker_epoch() {
        let mut cluster = Cluster::new();
        cluster.run(register(1, Some("a")));
        let (records, result) = cluster.run(Command::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 99,
        });
        assert!(records.is_empty());
        let CommandResult::UnfenceBroker(result) = result else {
            panic!("{result:?}")
        };
        assert_eq!(error_code(result), code(ResponseError::StaleBrokerEpoch));
        let (records, result) = cluster.unfence(1);
        assert_eq!(result, CommandResult::UnfenceBroker(Ok(())));
        assert_eq!(records.len(), 1);
        assert!(!cluster.image.broker(1).unwrap().fenced);
        assert_eq!(
            cluster.image.to_client_image(1).brokers[&1].host,
            "broker-1"
        );
        let (records, _) = cluster.unfence(1);
        assert!(records.is_empty(), "unfencing twice changes nothing");
    }

    #[test]
    fn registration_is_refused_for_another_cluster_and_for_a_live_duplicate() {
        let mut cluster = three_racks();
        let (records, result) = cluster.run(Command::RegisterBroker {
            broker_id: 4,
            incarnation_id: incarnation(4, 1),
            listeners: listeners(4),
            rack: None,
            cluster_id: "other".into(),
        });
        assert!(records.is_empty());
        let CommandResult::RegisterBroker(result) = result else {
            panic!()
        };
        let error = result.unwrap_err();
        assert_eq!(error.code, code(ResponseError::InconsistentClusterId));
        assert_eq!(
            error.message,
            format!("Expected cluster ID {CLUSTER}, but got cluster ID other")
        );
        let duplicate = Command::RegisterBroker {
            broker_id: 1,
            incarnation_id: incarnation(1, 2),
            listeners: listeners(1),
            rack: Some("a".into()),
            cluster_id: CLUSTER.into(),
        };
        let (records, result) = cluster.run(duplicate.clone());
        assert!(records.is_empty());
        let CommandResult::RegisterBroker(result) = result else {
            panic!()
        };
        assert_eq!(
            error_code(result),
            code(ResponseError::DuplicateBrokerRegistration)
        );
        // Once the old incarnation is fenced (its session expired), the new one may register.
        cluster.fence(1);
        let (_, result) = cluster.run(duplicate);
        assert_eq!(
            result,
            CommandResult::RegisterBroker(Ok(cluster.offset as i64))
        );
        let broker = cluster.image.broker(1).unwrap();
        assert_eq!(broker.incarnation_id, incarnation(1, 2));
        assert!(broker.fenced);
    }

    /// What fencing broker 1 does to a topic of 6 partitions; the records it writes are pinned
    /// by the golden script `tests/golden/controller/fence_moves_leadership.txt`.
    #[test]
    fn fencing_a_broker_moves_its_leadership_and_takes_it_out_of_every_isr() {
        let mut cluster = three_racks();
        cluster.create("orders", 6, 3);
        let before: Vec<PartitionImage> = cluster.partitions("orders").to_vec();
        let (_, result) = cluster.fence(1);
        assert_eq!(result, CommandResult::FenceBroker(Ok(())));
        for (old, new) in before.iter().zip(cluster.partitions("orders")) {
            assert!(!new.isr.contains(&1));
            assert_eq!(new.partition_epoch, old.partition_epoch + 1);
            if old.leader == 1 {
                assert!(new.leader != 1 && old.isr.contains(&new.leader));
                assert_eq!(new.leader_epoch, old.leader_epoch + 1);
            } else {
                assert_eq!(
                    (new.leader, new.leader_epoch),
                    (old.leader, old.leader_epoch)
                );
            }
        }
        assert!(!cluster.image.to_client_image(2).brokers.contains_key(&1));
        let (records, _) = cluster.fence(1);
        assert!(records.is_empty(), "fencing twice changes nothing");
    }

    #[test]
    fn fencing_every_broker_leaves_partitions_leaderless_with_the_last_isr_member() {
        let mut cluster = three_racks();
        cluster.create("orders", 3, 3);
        for broker in [1, 2, 3] {
            cluster.fence(broker);
        }
        for partition in cluster.partitions("orders") {
            assert_eq!(partition.leader, NO_LEADER);
            assert_eq!(partition.isr.len(), 1, "{partition:?}");
        }
        // The last ISR member comes back: it leads again.
        let last = cluster.partitions("orders")[0].isr[0];
        cluster.run(register(last, Some("x")));
        let (records, _) = cluster.unfence(last);
        assert!(records.len() > 1, "{records:?}");
        for partition in cluster.partitions("orders") {
            let expected = if partition.isr == [last] {
                last
            } else {
                NO_LEADER
            };
            assert_eq!(partition.leader, expected, "{partition:?}");
        }
    }

    #[test]
    fn controlled_shutdown_moves_leadership_away_before_the_broker_stops() {
        let mut cluster = three_racks();
        cluster.create("orders", 6, 3);
        assert_eq!(cluster.image.leader_count(2), 2);
        let broker_epoch = cluster.epoch(2);
        let (records, result) = cluster.run(Command::ControlledShutdown {
            broker_id: 2,
            broker_epoch,
        });
        assert_eq!(result, CommandResult::ControlledShutdown(Ok(())));
        assert!(matches!(
            records[0],
            Record::BrokerControlledShutdown { broker_id: 2, .. }
        ));
        assert_eq!(records.len(), 7);
        assert_eq!(cluster.image.leader_count(2), 0);
        let broker = cluster.image.broker(2).unwrap();
        assert!(broker.in_controlled_shutdown && !broker.fenced);
        // It gets no new replicas while it shuts down.
        let err = cluster.run(Command::CreateTopics {
            topics: vec![crate::controller::testing::new_topic("more", 1, 3)],
            validate_only: false,
        });
        let CommandResult::CreateTopics(results) = err.1 else {
            panic!()
        };
        assert_eq!(
            results[0].as_ref().unwrap_err().code,
            code(ResponseError::InvalidReplicationFactor)
        );
        // Then its session ends and it is fenced: nothing left to move.
        let (records, _) = cluster.fence(2);
        assert_eq!(records.len(), 1, "{records:?}");
        assert!(!cluster.image.broker(2).unwrap().in_controlled_shutdown);
    }

    #[test]
    fn unclean_election_lets_an_out_of_sync_replica_lead_only_where_the_topic_allows_it() {
        let mut cluster = three_racks();
        for name in ["clean", "unclean"] {
            cluster.create(name, 1, 3);
        }
        cluster.run(Command::AlterConfigs {
            resource: ConfigResource::Topic("unclean".into()),
            changes: vec![(
                UNCLEAN_LEADER_ELECTION_ENABLE.into(),
                crate::controller::ConfigOp::Set("true".into()),
            )],
            incremental: true,
            validate_only: false,
        });
        // Brokers 2 and 3 leave the ISRs (their sessions expire, then they return), so 1 is
        // the last in-sync replica of both partitions; then 1 goes too.
        for broker in [2, 3] {
            cluster.fence(broker);
            cluster.run(register(broker, Some("x")));
            cluster.unfence(broker);
        }
        for name in ["clean", "unclean"] {
            assert_eq!(cluster.partitions(name)[0].isr, vec![1], "{name}");
        }
        cluster.fence(1);
        let clean = &cluster.partitions("clean")[0];
        assert_eq!((clean.leader, &clean.isr[..]), (NO_LEADER, &[1][..]));
        let unclean = &cluster.partitions("unclean")[0];
        assert_eq!((unclean.leader, &unclean.isr[..]), (2, &[2][..]));
        // A leaderless clean partition waits for its last ISR member; an unclean one would
        // take the first replica to return.
        cluster.run(register(1, Some("a")));
        cluster.unfence(1);
        assert_eq!(cluster.partitions("clean")[0].leader, 1);
    }

    #[test]
    fn a_controlled_shutdown_of_the_only_replica_leaves_the_partition_leaderless() {
        let mut cluster = Cluster::with_brokers(&[(1, "a")]);
        cluster.create("solo", 1, 1);
        let broker_epoch = cluster.epoch(1);
        cluster.run(Command::ControlledShutdown {
            broker_id: 1,
            broker_epoch,
        });
        let partition = &cluster.partitions("solo")[0];
        assert_eq!(
            (partition.leader, &partition.isr[..]),
            (NO_LEADER, &[1][..])
        );
    }

    #[test]
    fn broker_commands_check_the_broker_and_its_epoch() {
        let mut cluster = three_racks();
        let stale = Command::FenceBroker {
            broker_id: 1,
            broker_epoch: 0,
        };
        let unknown = Command::ControlledShutdown {
            broker_id: 9,
            broker_epoch: 1,
        };
        let (records, result) = cluster.run(stale);
        assert!(records.is_empty());
        assert_eq!(
            result,
            CommandResult::FenceBroker(Err(ApiError::new(
                ResponseError::StaleBrokerEpoch,
                "Expected broker epoch 1, but got broker epoch 0"
            )))
        );
        let (_, result) = cluster.run(unknown);
        let CommandResult::ControlledShutdown(result) = result else {
            panic!()
        };
        assert_eq!(
            error_code(result),
            code(ResponseError::BrokerIdNotRegistered)
        );
        let (_, result) = cluster.run(Command::UnregisterBroker { broker_id: 9 });
        let CommandResult::UnregisterBroker(result) = result else {
            panic!()
        };
        assert_eq!(
            error_code(result),
            code(ResponseError::BrokerIdNotRegistered)
        );
    }

    #[test]
    fn re_registering_a_live_broker_moves_its_leadership_first() {
        let mut cluster = three_racks();
        cluster.create("orders", 3, 3);
        let (records, result) = cluster.run(register(1, Some("a")));
        assert_eq!(
            result,
            CommandResult::RegisterBroker(Ok(cluster.offset as i64))
        );
        assert!(matches!(
            records.last(),
            Some(Record::RegisterBroker { fenced: true, .. })
        ));
        assert_eq!(cluster.image.leader_count(1), 0);
    }

    #[test]
    fn unregistering_a_broker_removes_it_after_moving_its_leadership() {
        let mut cluster = three_racks();
        cluster.create("orders", 3, 3);
        let (records, result) = cluster.run(Command::UnregisterBroker { broker_id: 3 });
        assert_eq!(result, CommandResult::UnregisterBroker(Ok(())));
        assert!(matches!(
            records.last(),
            Some(Record::UnregisterBroker { broker_id: 3, .. })
        ));
        assert!(cluster.image.broker(3).is_none());
        assert_eq!(cluster.image.leader_count(3), 0);
    }

    #[test]
    fn producer_id_blocks_are_strictly_increasing_and_need_the_broker_epoch() {
        let mut cluster = three_racks();
        let mut blocks = Vec::new();
        for broker in [1, 2, 1] {
            let broker_epoch = cluster.epoch(broker);
            let (records, result) = cluster.run(Command::AllocateProducerIds {
                broker_id: broker,
                broker_epoch,
            });
            assert_eq!(records.len(), 1);
            let CommandResult::AllocateProducerIds(Ok(block)) = result else {
                panic!("{result:?}")
            };
            blocks.push(block);
        }
        assert_eq!(
            blocks.iter().map(|b| (b.first, b.size)).collect::<Vec<_>>(),
            vec![(0, 1000), (1000, 1000), (2000, 1000)]
        );
        assert_eq!(cluster.image.next_producer_id(), 3000);
        let (records, result) = cluster.run(Command::AllocateProducerIds {
            broker_id: 1,
            broker_epoch: 0,
        });
        assert!(records.is_empty());
        let CommandResult::AllocateProducerIds(result) = result else {
            panic!()
        };
        assert_eq!(error_code(result), code(ResponseError::StaleBrokerEpoch));
    }

    #[test]
    fn feature_levels_are_set_and_removed_by_level_zero() {
        let mut cluster = Cluster::new();
        let set = |level| Command::SetFeatureLevel {
            name: "metadata.version".into(),
            level,
        };
        assert_eq!(
            cluster.run(set(7)).1,
            CommandResult::SetFeatureLevel(Ok(()))
        );
        assert_eq!(cluster.image.feature_level("metadata.version"), 7);
        assert!(
            cluster.run(set(7)).0.is_empty(),
            "the same level changes nothing"
        );
        let (_, result) = cluster.run(set(-1));
        let CommandResult::SetFeatureLevel(result) = result else {
            panic!()
        };
        assert_eq!(
            error_code(result),
            code(ResponseError::InvalidUpdateVersion)
        );
        cluster.run(set(0));
        assert_eq!(cluster.image.feature_level("metadata.version"), 0);
    }

    #[test]
    fn a_no_op_writes_a_no_op_record() {
        let mut cluster = Cluster::new();
        assert_eq!(
            cluster.run(Command::NoOp),
            (vec![Record::NoOp], CommandResult::NoOp)
        );
        assert_eq!(cluster.image.offset(), 1);
    }
}
