//! The controller's [`ferry_quorum::StateMachine`], and the read handle brokers are served from.
//!
//! [`MetadataStateMachine`] is owned by the quorum task. Each committed entry carries one
//! [`Command`]; `apply` executes it against the image, applies the resulting records, keeps
//! them in a bounded history, and answers the encoded [`CommandResult`].
//!
//! # Input that cannot be applied
//!
//! [`StateMachine::validate`] refuses, before it is proposed, a command that does not decode
//! (checks that need the image stay in [`execute`], whose refusals are results). An entry that
//! still does not decode (another version's, a bug) is applied as a no-op that counts it and
//! keeps its error in the image ([`MetadataImage::undecodable_entries`]), the same on every
//! voter and in snapshots, and is logged: never a panic, which would repeat at every restart
//! and stop the cluster's metadata quorum for good. A snapshot that does not decode, or is of
//! another cluster, is an error of [`StateMachine::restore`] and leaves the state unchanged.
//!
//! [`MetadataLog`] is a cloneable handle on the same state for the gRPC shell, which runs
//! outside the quorum task: the latest image, the applied offset (also as a `watch`), and the
//! records since an offset. The two share one `Arc<Mutex<…>>`; `apply` holds the lock only to
//! swap in the new image and push the batch (the image is copy-on-write behind an `Arc`, so
//! readers clone a pointer, never the image).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_quorum::StateMachine;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::command::{Command, CommandResult};
use super::execute::execute;
use super::image::MetadataImage;
use super::limits::Limits;
use super::records::Record;

/// Most record batches the history keeps; older ones are dropped, and a broker behind them
/// gets a snapshot.
pub const HISTORY_BATCHES_MAX: usize = 10_000;

/// Most records the history keeps over all batches (bounds memory when batches are large,
/// e.g. topics of thousands of partitions); older batches are dropped first.
pub const HISTORY_RECORDS_MAX: usize = 1_000_000;

/// What a broker at some offset needs to catch up.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// Every batch after the broker's offset, in order (empty when it is up to date).
    Records(Vec<(u64, Vec<Record>)>),
    /// The history no longer reaches back to the broker's offset: start over from this image.
    Snapshot(Arc<MetadataImage>),
}

/// A read-only question to the state machine ([`StateMachine::query`]), JSON-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// Answers the applied offset as 8 big-endian bytes.
    Offset,
    /// Answers the encoded image ([`MetadataImage::encode`]).
    Image,
}

/// The state behind the lock.
#[derive(Debug)]
struct Shared {
    /// The current image.
    image: Arc<MetadataImage>,
    /// Recent batches `(offset, records)`, oldest first.
    history: VecDeque<(u64, Vec<Record>)>,
    /// Records in `history`.
    history_records: usize,
    /// The history holds every batch with an offset above this one.
    history_after: u64,
}

/// A cloneable read handle on the controller's metadata. See the module docs.
#[derive(Debug, Clone)]
pub struct MetadataLog {
    /// Image and history.
    shared: Arc<Mutex<Shared>>,
    /// The applied offset; receivers wake on every applied batch and restore.
    applied: Arc<watch::Sender<u64>>,
}

impl MetadataLog {
    /// Locks the shared state. A poisoned lock means `apply` panicked: the process is going
    /// down anyway.
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .expect("metadata log lock poisoned by a panic in apply")
    }

    /// The current image (a pointer clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.lock().image.clone()
    }

    /// The raft index of the last applied command. It may be above the image's offset: a
    /// command that was refused or changed nothing writes no batch.
    pub fn applied_offset(&self) -> u64 {
        *self.applied.borrow()
    }

    /// A receiver of the applied offset.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// What a broker that has applied everything up to `offset` needs next.
    pub fn read_since(&self, offset: u64) -> Delta {
        let shared = self.lock();
        if offset < shared.history_after {
            return Delta::Snapshot(shared.image.clone());
        }
        let batches = shared
            .history
            .iter()
            .skip_while(|(o, _)| *o <= offset)
            .cloned()
            .collect();
        Delta::Records(batches)
    }
}

/// The controller's state machine. See the module docs.
#[derive(Debug)]
pub struct MetadataStateMachine {
    /// Shared with every [`MetadataLog`] handed out.
    log: MetadataLog,
    /// Defaults and limits; must be the same on every voter.
    limits: Limits,
}

impl MetadataStateMachine {
    /// An empty state machine for `cluster_id`.
    pub fn new(cluster_id: impl Into<String>, limits: Limits) -> Self {
        let image = MetadataImage::new(cluster_id);
        let shared = Shared {
            history_after: image.offset(),
            image: Arc::new(image),
            history: VecDeque::new(),
            history_records: 0,
        };
        Self {
            log: MetadataLog {
                shared: Arc::new(Mutex::new(shared)),
                applied: Arc::new(watch::channel(0).0),
            },
            limits,
        }
    }

    /// A read handle for the shell.
    pub fn log(&self) -> MetadataLog {
        self.log.clone()
    }

    /// Executes and applies `command` at `offset`; the core of [`StateMachine::apply`].
    pub fn apply_command(&mut self, offset: u64, command: &Command) -> CommandResult {
        let mut shared = self.log.lock();
        let (records, result) = execute(&shared.image, offset, command, &self.limits);
        if !records.is_empty() {
            let image = Arc::make_mut(&mut shared.image);
            for record in &records {
                image.apply(offset, record);
            }
            debug_assert_eq!(image.check(), Ok(()), "after {command:?} at {offset}");
            shared.history_records += records.len();
            shared.history.push_back((offset, records));
            while shared.history.len() > HISTORY_BATCHES_MAX
                || shared.history_records > HISTORY_RECORDS_MAX
            {
                let (dropped, records) = shared.history.pop_front().expect("history is not empty");
                shared.history_records -= records.len();
                shared.history_after = dropped;
            }
        }
        drop(shared);
        self.log.applied.send_replace(offset);
        result
    }
}

impl MetadataStateMachine {
    /// Applies an entry at `index` that did not decode as a no-op that records `error`.
    fn skip_undecodable(&mut self, index: u64, error: String) -> CommandResult {
        let error = format!("raft entry {index} is not a metadata command: {error}");
        tracing::error!(index, %error, "applied an undecodable metadata entry as a no-op");
        let mut shared = self.log.lock();
        Arc::make_mut(&mut shared.image).record_undecodable(error);
        drop(shared);
        self.log.applied.send_replace(index);
        CommandResult::NoOp
    }

    /// Decodes a snapshot and checks that it belongs to this cluster.
    fn decode_snapshot(&self, data: &[u8]) -> Result<MetadataImage, String> {
        let image = MetadataImage::decode(data)
            .map_err(|e| format!("undecodable metadata snapshot: {e}"))?;
        let cluster_id = self.log.image().cluster_id().to_string();
        if image.cluster_id() != cluster_id {
            return Err(format!(
                "a snapshot of cluster {:?}, not {cluster_id:?}",
                image.cluster_id()
            ));
        }
        Ok(image)
    }
}

impl StateMachine for MetadataStateMachine {
    fn validate(&self, command: &[u8]) -> Result<(), String> {
        Command::decode(command)
            .map(|_| ())
            .map_err(|e| format!("not a metadata command: {e}"))
    }

    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        match Command::decode(command) {
            Ok(command) => self.apply_command(index, &command).encode(),
            Err(e) => self.skip_undecodable(index, e.to_string()).encode(),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.log.image().encode()
    }

    fn validate_snapshot(&self, data: &[u8]) -> Result<(), String> {
        self.decode_snapshot(data).map(|_| ())
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let image = self.decode_snapshot(data)?;
        let offset = image.offset();
        let mut shared = self.log.lock();
        shared.image = Arc::new(image);
        shared.history.clear();
        shared.history_records = 0;
        shared.history_after = offset;
        drop(shared);
        self.log.applied.send_replace(offset);
        Ok(())
    }

    fn query(&self, query: &[u8]) -> Vec<u8> {
        let query: Query = serde_json::from_slice(query)
            .unwrap_or_else(|e| panic!("a metadata query that does not decode: {e}"));
        match query {
            Query::Offset => self.log.applied_offset().to_be_bytes().to_vec(),
            Query::Image => self.log.image().encode(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::controller::command::ConfigOp;
    use crate::controller::records::ConfigResource;
    use crate::controller::testing::{CLUSTER, incarnation, listeners, new_topic, register};
    use crate::metadata::TopicRef;

    fn machine() -> MetadataStateMachine {
        MetadataStateMachine::new(CLUSTER, Limits::default())
    }

    /// A random command over brokers 1..=5 and topics t0..t9, valid or not.
    fn random_command(rng: &mut StdRng, image: &MetadataImage) -> Command {
        let broker = rng.random_range(1..=5);
        let epoch = image.broker(broker).map_or(0, |b| b.broker_epoch);
        let topic = format!("t{}", rng.random_range(0..10));
        match rng.random_range(0..10) {
            0 => Command::RegisterBroker {
                broker_id: broker,
                incarnation_id: incarnation(broker, rng.random_range(1..3)),
                listeners: listeners(broker),
                rack: Some(["a", "b", "c"][broker as usize % 3].into()),
                cluster_id: CLUSTER.into(),
            },
            1 | 2 => Command::UnfenceBroker {
                broker_id: broker,
                broker_epoch: epoch,
            },
            3 => Command::FenceBroker {
                broker_id: broker,
                broker_epoch: epoch,
            },
            4 => Command::ControlledShutdown {
                broker_id: broker,
                broker_epoch: epoch,
            },
            5 => Command::CreateTopics {
                topics: vec![new_topic(
                    &topic,
                    rng.random_range(1..8),
                    rng.random_range(1..4),
                )],
                validate_only: false,
            },
            6 => Command::DeleteTopics {
                topics: vec![TopicRef::Name(topic)],
            },
            7 => Command::CreatePartitions {
                topic,
                new_total_count: rng.random_range(1..12),
                assignments: vec![],
                validate_only: false,
            },
            8 => Command::AlterConfigs {
                resource: ConfigResource::Topic(topic),
                changes: vec![("retention.ms".into(), ConfigOp::Set("1000".into()))],
                incremental: true,
                validate_only: false,
            },
            _ => Command::AllocateProducerIds {
                broker_id: broker,
                broker_epoch: epoch,
            },
        }
    }

    /// Feeds `count` seeded random commands from index `first` into `machines`, through the
    /// quorum's byte interface; returns the responses of the first machine.
    fn drive(seed: u64, first: u64, count: u64, machines: &mut [&mut MetadataStateMachine]) {
        let mut rng = StdRng::seed_from_u64(seed);
        for index in first..first + count {
            let command = random_command(&mut rng, &machines[0].log().image()).encode();
            let responses: Vec<Vec<u8>> = machines
                .iter_mut()
                .map(|m| m.apply(index, &command))
                .collect();
            assert!(responses.windows(2).all(|w| w[0] == w[1]), "index {index}");
            machines[0].log().image().check().unwrap();
        }
    }

    #[test]
    fn two_voters_fed_the_same_commands_have_identical_snapshots() {
        for seed in 0..5 {
            let (mut a, mut b) = (machine(), machine());
            drive(seed, 1, 400, &mut [&mut a, &mut b]);
            assert_eq!(a.snapshot(), b.snapshot(), "seed {seed}");
            assert!(
                a.log().image().topics().count() > 0,
                "the scenario does something"
            );
        }
    }

    #[test]
    fn restoring_a_snapshot_and_continuing_equals_never_snapshotting() {
        let (mut straight, mut first) = (machine(), machine());
        drive(7, 1, 300, &mut [&mut straight, &mut first]);
        let mut restored = machine();
        restored.restore(&first.snapshot()).unwrap();
        assert_eq!(
            restored.log().applied_offset(),
            first.log().image().offset()
        );
        drive(8, 301, 300, &mut [&mut straight, &mut restored]);
        assert_eq!(straight.snapshot(), restored.snapshot());
    }

    #[test]
    fn a_broker_following_the_records_keeps_an_identical_image() {
        let mut controller = machine();
        let log = controller.log();
        let mut broker = MetadataImage::new(CLUSTER);
        let mut rng = StdRng::seed_from_u64(3);
        for index in 1..=300 {
            let command = random_command(&mut rng, &log.image());
            controller.apply_command(index, &command);
            if index % 17 == 0 {
                let Delta::Records(batches) = log.read_since(broker.offset()) else {
                    panic!("the history covers the broker");
                };
                for (offset, records) in batches {
                    records.iter().for_each(|r| broker.apply(offset, r));
                }
                assert_eq!(broker, *log.image(), "index {index}");
            }
        }
    }

    #[test]
    fn a_broker_behind_the_history_gets_a_snapshot() {
        let mut controller = machine();
        let log = controller.log();
        controller.apply_command(1, &register(1, Some("a")));
        controller.apply_command(2, &Command::NoOp);
        controller.apply_command(3, &Command::UnregisterBroker { broker_id: 9 });
        assert_eq!((log.applied_offset(), log.image().offset()), (3, 2));
        let offsets = |delta| match delta {
            Delta::Records(batches) => batches.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            Delta::Snapshot(_) => panic!("records expected"),
        };
        assert_eq!(offsets(log.read_since(0)), vec![1, 2]);
        assert_eq!(offsets(log.read_since(1)), vec![2]);
        assert_eq!(offsets(log.read_since(2)), Vec::<u64>::new());
        // A restore clears the history: brokers behind the snapshot start over from it.
        let snapshot = controller.snapshot();
        controller.restore(&snapshot).unwrap();
        assert!(matches!(log.read_since(1), Delta::Snapshot(image) if image.offset() == 2));
        assert_eq!(offsets(log.read_since(2)), Vec::<u64>::new());
    }

    #[test]
    fn the_history_is_bounded() {
        let mut controller = machine();
        let log = controller.log();
        let total = HISTORY_BATCHES_MAX as u64 + 5;
        for index in 1..=total {
            controller.apply_command(index, &Command::NoOp);
        }
        assert!(matches!(log.read_since(4), Delta::Snapshot(_)));
        let Delta::Records(batches) = log.read_since(5) else {
            panic!("offset 5 is the last one dropped; 6.. are kept")
        };
        assert_eq!(batches.len(), HISTORY_BATCHES_MAX);
    }

    #[tokio::test]
    async fn subscribers_see_the_applied_offset() {
        let mut controller = machine();
        let mut applied = controller.log().subscribe();
        controller.apply_command(4, &Command::NoOp);
        applied.changed().await.unwrap();
        assert_eq!(*applied.borrow(), 4);
    }

    #[test]
    fn queries_answer_the_offset_and_the_image() {
        let mut controller = machine();
        controller.apply_command(3, &Command::NoOp);
        let query = |q: Query| controller.query(&serde_json::to_vec(&q).unwrap());
        assert_eq!(query(Query::Offset), 3u64.to_be_bytes());
        assert_eq!(
            MetadataImage::decode(&query(Query::Image))
                .unwrap()
                .offset(),
            3
        );
    }

    #[test]
    fn an_entry_that_is_not_a_command_is_refused_before_the_log_and_a_recorded_no_op_in_it() {
        let mut controller = machine();
        assert!(controller.validate(b"garbage").is_err());
        assert!(controller.validate(&register(1, None).encode()).is_ok());

        // Applied anyway (as if it had reached the log): a no-op with the error recorded.
        let result = CommandResult::decode(&controller.apply(1, b"garbage")).unwrap();
        assert_eq!(result, CommandResult::NoOp);
        let image = controller.log().image();
        let (count, last) = image.undecodable_entries();
        assert_eq!(count, 1);
        assert!(
            last.unwrap()
                .starts_with("raft entry 1 is not a metadata command")
        );
        assert_eq!(controller.log().applied_offset(), 1);

        // Later commands apply as usual, and snapshots carry the record.
        controller.apply(2, &register(1, None).encode());
        assert_eq!(controller.log().image().brokers().count(), 1);
        let mut restored = machine();
        restored.restore(&controller.snapshot()).unwrap();
        assert_eq!(restored.snapshot(), controller.snapshot());
        assert_eq!(restored.log().image().undecodable_entries().0, 1);
    }

    #[test]
    fn a_snapshot_that_does_not_decode_or_is_of_another_cluster_is_refused() {
        let mut controller = machine();
        controller.apply(1, &register(1, None).encode());
        let before = controller.snapshot();
        let other = MetadataStateMachine::new("another-cluster", Limits::default());
        for bad in [b"{".to_vec(), Vec::new(), other.snapshot()] {
            assert!(controller.validate_snapshot(&bad).is_err());
            assert!(controller.restore(&bad).is_err());
            assert_eq!(controller.snapshot(), before);
        }
    }
}
