//! Test fixtures: a single controller image driven command by command, with the image's
//! invariants checked after every command.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::command::{Command, CommandResult};
use super::execute::execute;
use super::image::{MetadataImage, PartitionImage};
use super::limits::Limits;
use super::records::{BrokerEpoch, Listener, Record};
use crate::metadata::{NewTopic, NodeId, Topic};

/// The cluster id of every test cluster.
pub const CLUSTER: &str = "ferry-test";

/// A controller image and the next offset; every command's records are applied at once.
pub struct Cluster {
    /// The image.
    pub image: MetadataImage,
    /// The offset of the last command run.
    pub offset: u64,
    /// Limits passed to `execute`.
    pub limits: Limits,
}

/// The incarnation id tests give broker `id` (incarnation `n`).
pub fn incarnation(id: NodeId, n: u128) -> Uuid {
    Uuid::from_u128((n << 32) | id as u128)
}

/// One PLAINTEXT listener on `broker-<id>:9092`.
pub fn listeners(id: NodeId) -> Vec<Listener> {
    vec![Listener {
        name: "PLAINTEXT".into(),
        host: format!("broker-{id}"),
        port: 9092,
        security_protocol: "PLAINTEXT".into(),
    }]
}

/// A CreateTopics item with a partition count and replication factor.
pub fn new_topic(name: &str, partitions: i32, factor: i16) -> NewTopic {
    NewTopic {
        name: name.into(),
        num_partitions: Some(partitions),
        replication_factor: Some(factor),
        assignments: vec![],
        configs: vec![],
    }
}

/// A RegisterBroker command for the first incarnation of `id`.
pub fn register(id: NodeId, rack: Option<&str>) -> Command {
    Command::RegisterBroker {
        broker_id: id,
        incarnation_id: incarnation(id, 1),
        listeners: listeners(id),
        rack: rack.map(str::to_string),
        cluster_id: CLUSTER.into(),
    }
}

impl Cluster {
    /// An empty cluster with default limits.
    pub fn new() -> Self {
        Self {
            image: MetadataImage::new(CLUSTER),
            offset: 0,
            limits: Limits::default(),
        }
    }

    /// A cluster whose brokers `(id, rack)` are registered and unfenced.
    pub fn with_brokers(brokers: &[(NodeId, &str)]) -> Self {
        let mut cluster = Self::new();
        for &(id, rack) in brokers {
            cluster.run(register(id, Some(rack)));
            cluster.unfence(id);
        }
        cluster
    }

    /// Executes `command` at the next offset, applies its records, checks the invariants
    /// (image consistent, epochs never decrease, any change bumps the partition epoch).
    pub fn run(&mut self, command: Command) -> (Vec<Record>, CommandResult) {
        self.offset += 1;
        let before = self.partition_states();
        let (records, result) = execute(&self.image, self.offset, &command, &self.limits);
        for record in &records {
            self.image.apply(self.offset, record);
        }
        self.image.check().unwrap();
        for (key, after) in self.partition_states() {
            let Some(before) = before.get(&key) else {
                continue;
            };
            assert!(after.leader_epoch >= before.leader_epoch, "{key:?}");
            assert!(after.partition_epoch >= before.partition_epoch, "{key:?}");
            if after != *before {
                assert!(after.partition_epoch > before.partition_epoch, "{key:?}");
            }
            if after.leader != before.leader {
                assert!(after.leader_epoch > before.leader_epoch, "{key:?}");
            }
        }
        (records, result)
    }

    /// Every partition by (topic name, index).
    fn partition_states(&self) -> BTreeMap<(String, usize), PartitionImage> {
        self.image
            .topics()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ((t.name.clone(), i), p.clone()))
            })
            .collect()
    }

    /// The current epoch of broker `id`.
    pub fn epoch(&self, id: NodeId) -> BrokerEpoch {
        self.image.broker(id).expect("registered").broker_epoch
    }

    /// Unfences broker `id` with its current epoch.
    pub fn unfence(&mut self, id: NodeId) -> (Vec<Record>, CommandResult) {
        let broker_epoch = self.epoch(id);
        self.run(Command::UnfenceBroker {
            broker_id: id,
            broker_epoch,
        })
    }

    /// Fences broker `id` with its current epoch.
    pub fn fence(&mut self, id: NodeId) -> (Vec<Record>, CommandResult) {
        let broker_epoch = self.epoch(id);
        self.run(Command::FenceBroker {
            broker_id: id,
            broker_epoch,
        })
    }

    /// Creates one topic and returns it; panics if that fails.
    pub fn create(&mut self, name: &str, partitions: i32, factor: i16) -> Topic {
        let (_, result) = self.run(Command::CreateTopics {
            topics: vec![new_topic(name, partitions, factor)],
            validate_only: false,
        });
        match result {
            CommandResult::CreateTopics(mut results) => results.remove(0).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// The partitions of topic `name`.
    pub fn partitions(&self, name: &str) -> &[PartitionImage] {
        &self
            .image
            .topic_by_name(name)
            .expect("topic exists")
            .partitions
    }
}
