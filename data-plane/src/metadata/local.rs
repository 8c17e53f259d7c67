//! The single-node metadata authority: the node keeps the cluster image itself.
//!
//! Used when a node runs alone (`ferry node` in combined single-node mode, `ferry dev` today).
//! The image lives in one JSON file in the node's data directory, replaced atomically (write to a
//! temporary file, fsync, rename, fsync the directory) on every change, so a crash at any moment
//! leaves either the old or the new image. A change is acknowledged only after that.
//!
//! # Caveats
//! Only this node appears in the image, so topics can have a replication factor of 1. The
//! quorum-backed authority lifts that.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use tokio::sync::watch;

use super::topic_config::TopicConfig;
use super::{
    AdminError, Authority, BrokerInfo, CreateResult, DeleteResult, Image, NewTopic, NodeId,
    PartitionState, Topic, TopicRef, validate,
};

/// Cluster-wide defaults and limits for new topics, by their Kafka names.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDefaults {
    /// `num.partitions`: partitions of a topic created without a count (and auto-created ones).
    pub num_partitions: i32,
    /// `default.replication.factor`: replication factor when none is given.
    pub default_replication_factor: i16,
    /// Broker-level defaults of every topic config.
    pub config: TopicConfig,
    /// Most partitions one CreateTopics request may create; a larger request is refused whole.
    pub partitions_per_request_max: usize,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self {
            num_partitions: 1,
            default_replication_factor: 1,
            config: TopicConfig::default(),
            partitions_per_request_max: 10_000,
        }
    }
}

/// Options of the local authority.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// File holding the image.
    pub path: PathBuf,
    /// Cluster id for a new image; an existing image must carry the same id.
    pub cluster_id: String,
    /// This node, the only broker.
    pub broker: BrokerInfo,
    /// Defaults for new topics.
    pub defaults: TopicDefaults,
}

/// The single-node authority. See the module docs.
pub struct LocalAuthority {
    /// Options it was opened with.
    options: LocalOptions,
    /// The current image; the lock serialises changes.
    image: Mutex<Arc<Image>>,
    /// Publishes every new image to subscribers.
    published: watch::Sender<Arc<Image>>,
}

impl LocalAuthority {
    /// Loads the image from `options.path`, or starts an empty one, and records this node as
    /// the cluster's broker (its advertised address may have changed since the last start).
    pub fn open(options: LocalOptions) -> std::io::Result<Self> {
        let mut image = match fs::read(&options.path) {
            Ok(bytes) => serde_json::from_slice::<Image>(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "metadata image {} is unreadable: {e}",
                        options.path.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Image::empty(options.cluster_id.clone(), options.broker.node_id)
            }
            Err(e) => return Err(e),
        };
        if image.cluster_id != options.cluster_id {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "metadata image {} belongs to cluster {}, not {}",
                    options.path.display(),
                    image.cluster_id,
                    options.cluster_id
                ),
            ));
        }
        if image.brokers.get(&options.broker.node_id) != Some(&options.broker) {
            image.brokers = BTreeMap::from([(options.broker.node_id, options.broker.clone())]);
            image.controller_id = options.broker.node_id;
            image.offset += 1;
            write_atomically(&options.path, &image)?;
        }
        let image = Arc::new(image);
        let (published, _) = watch::channel(image.clone());
        Ok(Self {
            options,
            image: Mutex::new(image),
            published,
        })
    }

    /// Replaces the image: persists it, then publishes it.
    fn commit(&self, current: &mut Arc<Image>, mut next: Image) -> Result<(), AdminError> {
        next.offset = current.offset + 1;
        write_atomically(&self.options.path, &next).map_err(|e| {
            AdminError::new(
                ResponseError::KafkaStorageError,
                format!("could not persist the metadata image: {e}"),
            )
        })?;
        *current = Arc::new(next);
        self.published.send_replace(current.clone());
        Ok(())
    }

    /// Validates one new topic against `image` and builds it.
    fn plan_topic(&self, image: &Image, request: &NewTopic) -> CreateResult {
        let defaults = &self.options.defaults;
        validate::topic_name(&request.name)?;
        if image.topics.contains_key(&request.name) {
            return Err(AdminError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", request.name),
            ));
        }
        validate::no_collision(image, &request.name)?;
        let overrides: BTreeMap<String, String> = request.configs.iter().cloned().collect();
        defaults.config.with_overrides(&overrides)?;
        let brokers: Vec<NodeId> = image.brokers.keys().copied().collect();
        let assignments = if request.assignments.is_empty() {
            let partitions = request.num_partitions.unwrap_or(defaults.num_partitions);
            let factor = request
                .replication_factor
                .unwrap_or(defaults.default_replication_factor);
            assign_replicas(&brokers, partitions, factor, image.topics.len())?
        } else {
            check_assignments(&brokers, request)?;
            request.assignments.clone()
        };
        let partitions = assignments
            .into_iter()
            .map(|replicas| PartitionState {
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
            })
            .collect();
        Ok(Topic {
            name: request.name.clone(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs: overrides,
            internal: request.name.starts_with("__"),
        })
    }
}

impl Authority for LocalAuthority {
    fn image(&self) -> Arc<Image> {
        self.published.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        self.published.subscribe()
    }

    fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> BoxFuture<'_, Vec<CreateResult>> {
        Box::pin(async move {
            let mut current = self.image.lock().expect("metadata lock poisoned");
            let requested: usize = topics
                .iter()
                .map(|t| match (&t.assignments, t.num_partitions) {
                    (a, _) if !a.is_empty() => a.len(),
                    (_, Some(n)) if n > 0 => n as usize,
                    _ => self.options.defaults.num_partitions.max(0) as usize,
                })
                .sum();
            let max = self.options.defaults.partitions_per_request_max;
            if requested > max {
                let error = AdminError::new(
                    ResponseError::PolicyViolation,
                    format!(
                        "The request would create {requested} partitions, more than the limit \
                         of {max} partitions per request"
                    ),
                );
                return topics.iter().map(|_| Err(error.clone())).collect();
            }
            let mut next = (**current).clone();
            let mut results = Vec::with_capacity(topics.len());
            for request in &topics {
                let result = self.plan_topic(&next, request);
                if let Ok(topic) = &result {
                    next.topics.insert(topic.name.clone(), topic.clone());
                }
                results.push(result);
            }
            if validate_only || results.iter().all(|r| r.is_err()) {
                return results;
            }
            if let Err(error) = self.commit(&mut current, next) {
                return results
                    .into_iter()
                    .map(|r| r.and(Err(error.clone())))
                    .collect();
            }
            results
        })
    }

    /// A single node is a quorum of one: itself, always the leader, in epoch 1.
    fn describe_quorum(&self) -> BoxFuture<'_, Result<super::QuorumState, AdminError>> {
        use ferry_proto::controller::v1::{Endpoint, ReplicaState};
        Box::pin(async move {
            let image = self.image();
            let broker = &self.options.broker;
            let offset = image.offset as i64;
            Ok(super::QuorumState {
                leader_id: broker.node_id,
                leader_epoch: 1,
                high_watermark: image.offset,
                voters: vec![ReplicaState {
                    replica_id: broker.node_id,
                    log_end_offset: offset,
                    last_fetch_timestamp: -1,
                    last_caught_up_timestamp: -1,
                }],
                observers: vec![],
                endpoints: vec![Endpoint {
                    node_id: broker.node_id,
                    host: broker.host.clone(),
                    port: i32::from(broker.port),
                }],
                cluster_id: image.cluster_id.clone(),
            })
        })
    }

    fn delete_topics(&self, topics: Vec<TopicRef>) -> BoxFuture<'_, Vec<DeleteResult>> {
        Box::pin(async move {
            let mut current = self.image.lock().expect("metadata lock poisoned");
            let mut next = (**current).clone();
            let mut results = Vec::with_capacity(topics.len());
            for topic in &topics {
                let found = match topic {
                    TopicRef::Name(name) => next.topics.get(name).map(|t| (t.name.clone(), t.id)),
                    TopicRef::Id(id) => next.topic_by_id(*id).map(|t| (t.name.clone(), t.id)),
                };
                results.push(match (found, topic) {
                    (Some((name, id)), _) => {
                        next.topics.remove(&name);
                        Ok((name, id))
                    }
                    (None, TopicRef::Name(name)) => Err(AdminError::new(
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic '{name}' does not exist."),
                    )),
                    (None, TopicRef::Id(id)) => Err(AdminError::new(
                        ResponseError::UnknownTopicId,
                        format!("Topic id {id} does not exist."),
                    )),
                });
            }
            if results.iter().any(|r| r.is_ok())
                && let Err(error) = self.commit(&mut current, next)
            {
                return results
                    .into_iter()
                    .map(|r| r.and(Err(error.clone())))
                    .collect();
            }
            results
        })
    }
}

/// Places `partitions` × `factor` replicas round-robin over `brokers`, each partition's
/// replicas on distinct brokers, starting at a different broker per topic (`seed`) so leaders
/// spread. Rack-aware placement belongs to the controller quorum.
fn assign_replicas(
    brokers: &[NodeId],
    partitions: i32,
    factor: i16,
    seed: usize,
) -> Result<Vec<Vec<NodeId>>, AdminError> {
    if partitions <= 0 {
        return Err(AdminError::new(
            ResponseError::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    if factor <= 0 {
        return Err(AdminError::new(
            ResponseError::InvalidReplicationFactor,
            "Replication factor must be larger than 0.",
        ));
    }
    if factor as usize > brokers.len() {
        return Err(AdminError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Unable to replicate the partition {factor} time(s): The target replication \
                 factor of {factor} cannot be reached because only {} broker(s) are registered.",
                brokers.len()
            ),
        ));
    }
    Ok((0..partitions as usize)
        .map(|p| {
            (0..factor as usize)
                .map(|r| brokers[(seed + p + r) % brokers.len()])
                .collect()
        })
        .collect())
}

/// Checks an explicit replica assignment: partitions numbered from 0 without gaps (implied by
/// the vector), every partition with the same number of distinct, known brokers.
fn check_assignments(brokers: &[NodeId], request: &NewTopic) -> Result<(), AdminError> {
    let invalid = |code, message: String| Err(AdminError::new(code, message));
    if request.num_partitions.is_some() || request.replication_factor.is_some() {
        return invalid(
            ResponseError::InvalidRequest,
            "Both numPartitions or replicationFactor and replicasAssignments were set. \
             Both cannot be used at the same time."
                .into(),
        );
    }
    let factor = request.assignments[0].len();
    for (partition, replicas) in request.assignments.iter().enumerate() {
        let distinct: BTreeSet<_> = replicas.iter().collect();
        if replicas.is_empty() || replicas.len() != factor || distinct.len() != replicas.len() {
            return invalid(
                ResponseError::InvalidReplicaAssignment,
                format!("Partition {partition} has an invalid replica assignment {replicas:?}"),
            );
        }
        if let Some(unknown) = replicas.iter().find(|b| !brokers.contains(b)) {
            return invalid(
                ResponseError::InvalidReplicaAssignment,
                format!("Partition {partition} is assigned to unknown broker {unknown}"),
            );
        }
    }
    Ok(())
}

/// Writes `image` to `path` so that a crash leaves the old or the new file, never a mix.
fn write_atomically(path: &Path, image: &Image) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(image).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(dir: &Path) -> LocalAuthority {
        LocalAuthority::open(LocalOptions {
            path: dir.join("image.json"),
            cluster_id: "test-cluster".into(),
            broker: BrokerInfo {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
            },
            defaults: TopicDefaults {
                partitions_per_request_max: 100,
                ..Default::default()
            },
        })
        .unwrap()
    }

    fn topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: Some(partitions),
            replication_factor: None,
            assignments: vec![],
            configs: vec![],
        }
    }

    #[tokio::test]
    async fn created_topics_survive_a_reopen_and_deleted_ones_stay_gone() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authority(dir.path());
        let created = auth
            .create_topics(vec![topic("a", 3), topic("b", 1)], false)
            .await;
        assert!(created.iter().all(|r| r.is_ok()));
        assert_eq!(
            auth.delete_topics(vec![TopicRef::Name("b".into())])
                .await
                .len(),
            1
        );
        let reopened = authority(dir.path());
        let image = reopened.image();
        assert_eq!(image.topics.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(image.topics["a"].partitions.len(), 3);
        assert_eq!(image.topics["a"].id, created[0].as_ref().unwrap().id);
    }

    #[tokio::test]
    async fn each_topic_gets_its_own_error_and_the_rest_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authority(dir.path());
        auth.create_topics(vec![topic("exists", 1)], false).await;
        let mut bad_factor = topic("rf3", 1);
        bad_factor.replication_factor = Some(3);
        let results = auth
            .create_topics(
                vec![
                    topic("exists", 1),
                    topic("bad name", 1),
                    topic("zero", 0),
                    bad_factor,
                    topic("ok", 2),
                ],
                false,
            )
            .await;
        let codes: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                Some(ResponseError::TopicAlreadyExists),
                Some(ResponseError::InvalidTopicException),
                Some(ResponseError::InvalidPartitions),
                Some(ResponseError::InvalidReplicationFactor),
                None
            ]
        );
        assert!(auth.image().topics.contains_key("ok"));
    }

    #[tokio::test]
    async fn validate_only_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authority(dir.path());
        let before = auth.image();
        assert!(auth.create_topics(vec![topic("t", 1)], true).await[0].is_ok());
        assert_eq!(auth.image(), before);
    }

    #[tokio::test]
    async fn a_request_over_the_partition_bound_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authority(dir.path());
        let results = auth
            .create_topics(vec![topic("a", 60), topic("b", 41)], false)
            .await;
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap_err().code == ResponseError::PolicyViolation)
        );
        assert!(auth.image().topics.is_empty());
    }

    #[tokio::test]
    async fn an_image_of_another_cluster_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        authority(dir.path());
        let err = LocalAuthority::open(LocalOptions {
            path: dir.path().join("image.json"),
            cluster_id: "other".into(),
            broker: BrokerInfo {
                node_id: 1,
                host: "h".into(),
                port: 1,
                rack: None,
            },
            defaults: TopicDefaults::default(),
        })
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("belongs to cluster test-cluster"),
            "{err}"
        );
    }

    #[test]
    fn replicas_are_distinct_and_spread() {
        let plan = assign_replicas(&[1, 2, 3], 6, 3, 0).unwrap();
        for replicas in &plan {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
        let leaders: BTreeSet<_> = plan.iter().map(|r| r[0]).collect();
        assert_eq!(leaders.len(), 3);
    }
}
