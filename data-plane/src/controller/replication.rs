//! Replication commands: AlterPartition (a leader asks to change its ISR) and preferred-leader
//! election.
//!
//! # AlterPartition (KIP-497, checked as Kafka's `ReplicationControlManager` does)
//!
//! ```text
//! leader ──AlterPartition{broker, broker epoch, partition, leader epoch, partition epoch,
//!                         new ISR}──▶ controller ──PartitionChange{isr}──▶ every broker
//! ```
//!
//! The leader computed the new ISR from the partition state it holds; the controller accepts
//! it only if that state is still current, so a stale leader or a request overtaken by another
//! change cannot undo a committed decision. Checks, in order, with the error the leader gets:
//!
//! | check | error |
//! |---|---|
//! | the broker is registered with this epoch | BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH |
//! | the partition exists | UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION |
//! | the leader epoch is the current one | FENCED_LEADER_EPOCH (older), UNKNOWN_LEADER_EPOCH (newer) |
//! | the broker leads the partition | NOT_LEADER_OR_FOLLOWER |
//! | the partition epoch is the current one | INVALID_UPDATE_VERSION |
//! | the ISR holds the leader, has no repeats, lies within the replicas | INVALID_REQUEST |
//! | every member it adds is unfenced and not shutting down | INELIGIBLE_REPLICA |
//!
//! An accepted request writes one `PartitionChange` with the new ISR (leader unchanged), which
//! bumps the partition epoch; asking for the current ISR writes nothing.
//!
//! # Preferred leaders
//!
//! The first replica of a partition is its preferred leader: placement spreads those evenly,
//! so leadership returning to them keeps the load balanced after failovers.
//! [`super::Command::ElectPreferredLeaders`] moves leadership of every partition whose preferred
//! replica is in the ISR, usable, and not leading; the active controller proposes it
//! periodically when [`preferred_leader_changes`] finds work.

use kafka_protocol::ResponseError;

use super::command::{AlteredPartition, ApiError};
use super::image::MetadataImage;
use super::records::{BrokerEpoch, LeaderChange, LeaderEpoch, PartitionEpoch, Record};
use crate::metadata::{NodeId, TopicId};

/// The fields of [`super::Command::AlterPartition`].
pub struct AlterPartition<'a> {
    /// The leader asking.
    pub broker_id: NodeId,
    /// Its broker epoch.
    pub broker_epoch: BrokerEpoch,
    /// The partition's topic.
    pub topic_id: TopicId,
    /// The partition's index.
    pub partition: i32,
    /// The leader epoch the leader is in.
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch the new ISR was computed from.
    pub partition_epoch: PartitionEpoch,
    /// The ISR asked for.
    pub new_isr: &'a [NodeId],
}

/// Validates an AlterPartition against `image` (see the module docs) and writes its change.
pub fn alter_partition(
    image: &MetadataImage,
    request: &AlterPartition,
    out: &mut Vec<Record>,
) -> Result<AlteredPartition, ApiError> {
    let broker = image.broker(request.broker_id).ok_or_else(|| {
        ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            format!("Broker {} is not registered.", request.broker_id),
        )
    })?;
    if broker.broker_epoch != request.broker_epoch {
        return Err(ApiError::new(
            ResponseError::StaleBrokerEpoch,
            format!(
                "Expected broker epoch {}, but got broker epoch {}",
                broker.broker_epoch, request.broker_epoch
            ),
        ));
    }
    let topic = image.topic(request.topic_id).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicId,
            format!("Topic id {} does not exist.", request.topic_id),
        )
    })?;
    let partition = usize::try_from(request.partition)
        .ok()
        .and_then(|p| topic.partitions.get(p))
        .ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!(
                    "Partition {}-{} does not exist.",
                    topic.name, request.partition
                ),
            )
        })?;
    let name = format!("{}-{}", topic.name, request.partition);
    if request.leader_epoch < partition.leader_epoch {
        return Err(ApiError::new(
            ResponseError::FencedLeaderEpoch,
            format!(
                "Leader epoch {} of {name} is older than the current {}.",
                request.leader_epoch, partition.leader_epoch
            ),
        ));
    }
    if request.leader_epoch > partition.leader_epoch {
        return Err(ApiError::new(
            ResponseError::UnknownLeaderEpoch,
            format!(
                "Leader epoch {} of {name} is newer than the current {}.",
                request.leader_epoch, partition.leader_epoch
            ),
        ));
    }
    if partition.leader != request.broker_id {
        return Err(ApiError::new(
            ResponseError::NotLeaderOrFollower,
            format!(
                "Broker {} does not lead {name}; {} does.",
                request.broker_id, partition.leader
            ),
        ));
    }
    if request.partition_epoch != partition.partition_epoch {
        return Err(ApiError::new(
            ResponseError::InvalidUpdateVersion,
            format!(
                "Partition epoch {} of {name} is not the current {}.",
                request.partition_epoch, partition.partition_epoch
            ),
        ));
    }
    let isr = request.new_isr;
    let repeats = isr.iter().enumerate().any(|(i, id)| isr[..i].contains(id));
    if !isr.contains(&request.broker_id)
        || repeats
        || isr.iter().any(|id| !partition.replicas.contains(id))
    {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "ISR {isr:?} of {name} must hold the leader {} once, within replicas {:?}.",
                request.broker_id, partition.replicas
            ),
        ));
    }
    let ineligible: Vec<NodeId> = isr
        .iter()
        .copied()
        .filter(|id| !partition.isr.contains(id))
        .filter(|id| image.broker(*id).is_none_or(|b| !b.is_usable()))
        .collect();
    if !ineligible.is_empty() {
        return Err(ApiError::new(
            ResponseError::IneligibleReplica,
            format!(
                "Replicas {ineligible:?} of {name} are fenced or shutting down and cannot join \
                 the ISR."
            ),
        ));
    }
    let same = isr.len() == partition.isr.len() && isr.iter().all(|id| partition.isr.contains(id));
    if same {
        return Ok(AlteredPartition {
            isr: partition.isr.clone(),
            leader_epoch: partition.leader_epoch,
            partition_epoch: partition.partition_epoch,
        });
    }
    out.push(Record::PartitionChange {
        topic_id: request.topic_id,
        partition: request.partition,
        isr: Some(isr.to_vec()),
        leader: LeaderChange::Unchanged,
        replicas: None,
    });
    Ok(AlteredPartition {
        isr: isr.to_vec(),
        leader_epoch: partition.leader_epoch,
        partition_epoch: partition.partition_epoch + 1,
    })
}

/// The changes a preferred-leader election makes: for every partition whose first replica is
/// in the ISR, usable and not the leader, leadership moves to it. In topic-id, then partition
/// order.
pub fn preferred_leader_changes(image: &MetadataImage) -> Vec<Record> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            let Some(&preferred) = partition.replicas.first() else {
                continue;
            };
            let eligible = partition.leader != preferred
                && partition.isr.contains(&preferred)
                && image.broker(preferred).is_some_and(|b| b.is_usable());
            if eligible {
                out.push(Record::PartitionChange {
                    topic_id: topic.id,
                    partition: index as i32,
                    isr: None,
                    leader: LeaderChange::Broker(preferred),
                    replicas: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::command::{Command, CommandResult};
    use crate::controller::testing::{Cluster, register};

    /// Brokers 1, 2, 3 and topic `orders` with one partition on [1, 2, 3], led by 1.
    fn orders() -> (Cluster, TopicId) {
        let mut cluster = Cluster::with_brokers(&[(1, "a"), (2, "b"), (3, "c")]);
        let topic = cluster.create("orders", 1, 3);
        assert_eq!(cluster.partitions("orders")[0].replicas, vec![1, 2, 3]);
        (cluster, topic.id)
    }

    /// An AlterPartition from the current leader of `orders-0` with its current epochs.
    fn alter(cluster: &Cluster, topic_id: TopicId, new_isr: Vec<NodeId>) -> Command {
        let p = &cluster.partitions("orders")[0];
        Command::AlterPartition {
            broker_id: p.leader,
            broker_epoch: cluster.epoch(p.leader),
            topic_id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr,
        }
    }

    fn refused(result: CommandResult) -> ResponseError {
        match result {
            CommandResult::AlterPartition(Err(e)) => {
                ResponseError::try_from_code(e.code).expect("a known code")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_leader_shrinks_and_expands_its_isr_and_each_change_bumps_the_partition_epoch() {
        let (mut cluster, topic) = orders();
        let before = cluster.partitions("orders")[0].clone();
        let (records, result) = cluster.run(alter(&cluster, topic, vec![1, 3]));
        assert_eq!(records.len(), 1);
        let after = cluster.partitions("orders")[0].clone();
        assert_eq!(after.isr, vec![1, 3]);
        assert_eq!(after.leader_epoch, before.leader_epoch);
        assert_eq!(after.partition_epoch, before.partition_epoch + 1);
        assert_eq!(
            result,
            CommandResult::AlterPartition(Ok(AlteredPartition {
                isr: vec![1, 3],
                leader_epoch: after.leader_epoch,
                partition_epoch: after.partition_epoch,
            }))
        );
        cluster.run(alter(&cluster, topic, vec![1, 2, 3]));
        assert_eq!(cluster.partitions("orders")[0].isr, vec![1, 2, 3]);
        let (records, _) = cluster.run(alter(&cluster, topic, vec![1, 2, 3]));
        assert!(
            records.is_empty(),
            "asking for the current ISR writes nothing"
        );
    }

    #[test]
    fn a_request_computed_from_an_older_partition_epoch_is_refused() {
        let (mut cluster, topic) = orders();
        let stale = alter(&cluster, topic, vec![1, 2]);
        cluster.run(alter(&cluster, topic, vec![1, 3]));
        let (records, result) = cluster.run(stale);
        assert!(records.is_empty());
        assert_eq!(refused(result), ResponseError::InvalidUpdateVersion);
        assert_eq!(cluster.partitions("orders")[0].isr, vec![1, 3]);
    }

    #[test]
    fn a_deposed_leader_is_fenced_by_its_leader_epoch() {
        let (mut cluster, topic) = orders();
        let from_old_leader = alter(&cluster, topic, vec![1]);
        cluster.fence(1); // leadership moves to 2, leader epoch + 1
        cluster.run(register(1, Some("a")));
        cluster.unfence(1);
        let Command::AlterPartition {
            broker_id,
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            new_isr,
            ..
        } = from_old_leader
        else {
            unreachable!()
        };
        let (records, result) = cluster.run(Command::AlterPartition {
            broker_id,
            broker_epoch: cluster.epoch(1),
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            new_isr,
        });
        assert!(records.is_empty());
        assert_eq!(refused(result), ResponseError::FencedLeaderEpoch);
    }

    #[test]
    fn only_the_current_leader_with_its_current_broker_epoch_may_ask() {
        let (mut cluster, topic) = orders();
        let mut command = alter(&cluster, topic, vec![1, 2]);
        if let Command::AlterPartition { broker_epoch, .. } = &mut command {
            *broker_epoch -= 1;
        }
        assert_eq!(
            refused(cluster.run(command).1),
            ResponseError::StaleBrokerEpoch
        );
        let mut command = alter(&cluster, topic, vec![2, 3]);
        if let Command::AlterPartition {
            broker_id,
            broker_epoch,
            ..
        } = &mut command
        {
            *broker_id = 2;
            *broker_epoch = cluster.epoch(2);
        }
        assert_eq!(
            refused(cluster.run(command).1),
            ResponseError::NotLeaderOrFollower
        );
    }

    #[test]
    fn the_new_isr_must_be_well_formed_and_its_new_members_eligible() {
        let (mut cluster, topic) = orders();
        for bad in [vec![2, 3], vec![1, 1], vec![1, 4]] {
            let result = cluster.run(alter(&cluster, topic, bad.clone())).1;
            assert_eq!(refused(result), ResponseError::InvalidRequest, "{bad:?}");
        }
        cluster.run(alter(&cluster, topic, vec![1, 2]));
        cluster.fence(3);
        let result = cluster.run(alter(&cluster, topic, vec![1, 2, 3])).1;
        assert_eq!(refused(result), ResponseError::IneligibleReplica);
    }

    #[test]
    fn unknown_partitions_are_refused() {
        let (mut cluster, topic) = orders();
        let mut command = alter(&cluster, topic, vec![1]);
        if let Command::AlterPartition { partition, .. } = &mut command {
            *partition = 7;
        }
        assert_eq!(
            refused(cluster.run(command).1),
            ResponseError::UnknownTopicOrPartition
        );
        let mut command = alter(&cluster, topic, vec![1]);
        if let Command::AlterPartition { topic_id, .. } = &mut command {
            *topic_id = uuid::Uuid::nil();
        }
        assert_eq!(
            refused(cluster.run(command).1),
            ResponseError::UnknownTopicId
        );
    }

    #[test]
    fn leadership_returns_to_the_preferred_replica_once_it_is_back_in_the_isr() {
        let (mut cluster, topic) = orders();
        cluster.fence(1);
        assert_eq!(cluster.partitions("orders")[0].leader, 2);
        cluster.run(register(1, Some("a")));
        cluster.unfence(1);
        assert!(
            preferred_leader_changes(&cluster.image).is_empty(),
            "not while it is outside the ISR"
        );
        let p = cluster.partitions("orders")[0].clone();
        cluster.run(Command::AlterPartition {
            broker_id: 2,
            broker_epoch: cluster.epoch(2),
            topic_id: topic,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: vec![2, 3, 1],
        });
        let (records, result) = cluster.run(Command::ElectPreferredLeaders);
        assert_eq!(records.len(), 1);
        assert_eq!(result, CommandResult::ElectPreferredLeaders(1));
        let after = &cluster.partitions("orders")[0];
        assert_eq!(after.leader, 1);
        assert_eq!(after.leader_epoch, p.leader_epoch + 1);
        assert!(preferred_leader_changes(&cluster.image).is_empty());
    }
}
