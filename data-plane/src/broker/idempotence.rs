//! Idempotent produce on a partition replica: the I/O shell around
//! [`crate::log::producer_state`].
//!
//! Every partition replica carries a [`Producers`] beside its log, under the same partition
//! lock, so the check of a batch's sequence and its append cannot interleave with another
//! request's.
//!
//! The methods here take the partition's log as an argument; `PartitionInner` (in
//! [`super::partition`]) calls them under its lock with its own log (`check_producer_batch`,
//! `record_appended`, ...), so this module does not reach into the partition.
//!
//! # Expected flow
//! - Leader ([`Producers::check_batch`] in `produce.rs`): before the append the
//!   batch's producer id, epoch and sequences are checked; a duplicate is answered with the
//!   original offsets, nothing is written, and [`Producers::duplicate_batches`] counts it; a
//!   refusal (OUT_OF_ORDER_SEQUENCE_NUMBER,
//!   INVALID_PRODUCER_EPOCH) writes nothing; otherwise the batch is appended and recorded.
//! - Follower ([`Producers::record_replicated`]): every batch copied from the leader is
//!   recorded, so a new leader deduplicates retries of its predecessor's batches.
//! - Restart ([`Producers::recover`]): the newest readable `<offset>.snapshot`
//!   at or below the log end offset is loaded and the log after it replayed; with no usable
//!   snapshot the whole log is replayed.
//! - Truncation ([`Producers::after_truncation`]): snapshots above the new end
//!   are deleted and the state is rebuilt as on a restart.
//! - Snapshots are written when a segment rolls (append, time-based roll) and on clean
//!   shutdown; producers expire after `producer.id.expiration.ms` of inactivity.
//!
//! # Caveats
//! - A snapshot failure is logged and costs only recovery time (the log is the truth).
//! - Producer state is not trimmed when retention deletes a producer's batches; see
//!   [`crate::log::producer_state`].

use std::path::PathBuf;

use crate::log::batch::{BatchHeader, check_batch};
use crate::log::producer_snapshot;
use crate::log::producer_state::{Check, ProducerBatch, ProducerStates, SequenceError};
use crate::log::{AppendInfo, Offset, PartitionLog};

/// Bytes read per step when replaying the log into the producer state.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The producer state of one partition replica and where its snapshots go.
#[derive(Debug, Default)]
pub struct Producers {
    /// The table (sans-IO).
    pub states: ProducerStates,
    /// The partition directory for `<offset>.snapshot` files; `None` keeps no snapshots (an
    /// in-memory log).
    snapshot_dir: Option<PathBuf>,
    /// The log's segment count when last looked at: a larger count means a roll, which takes a
    /// snapshot.
    segments_seen: usize,
    /// Batches this replica, leading, answered as duplicates (retries of batches already in
    /// its log) since the process opened it; `ferry node status` reports it. Kept in memory
    /// only, and across rebuilds of the table.
    pub duplicate_batches: u64,
}

/// What the leader does with a produced partition's records, decided under the partition lock.
#[derive(Debug, PartialEq, Eq)]
pub enum ProducerCheck {
    /// Not an idempotent batch: append as usual.
    Plain,
    /// A new idempotent batch: append it, then [`Producers::record_appended`].
    Append(ProducerBatch),
    /// A retry of a batch in the log at `first_offset..=last_offset`: answer with these.
    Duplicate {
        /// The original first offset.
        first_offset: Offset,
        /// The original last offset.
        last_offset: Offset,
    },
    /// Refused: answer the error, append nothing.
    Refused(ProducerRefusal),
}

/// Why an idempotent produce was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProducerRefusal {
    /// Sequence or epoch check failed.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// A request that Kafka refuses with INVALID_RECORD (87).
    #[error("{0}")]
    InvalidRecord(&'static str),
}

impl ProducerRefusal {
    /// The Kafka error code for the partition response.
    pub fn kafka_code(&self) -> i16 {
        match self {
            Self::Sequence(e) => e.kafka_code(),
            Self::InvalidRecord(_) => 87,
        }
    }
}

impl Producers {
    /// Checks produced `records` against the producer state (see the module docs). Records
    /// that do not parse are left to the log's validation (`Plain`), which refuses them.
    pub fn check_batch(&self, records: &[u8]) -> ProducerCheck {
        let Ok(header) = BatchHeader::parse(records) else {
            return ProducerCheck::Plain;
        };
        if header.is_transactional() {
            return ProducerCheck::Refused(ProducerRefusal::InvalidRecord(
                "transactional batches are not supported (Ferry has no transaction coordinator)",
            ));
        }
        let Some(batch) = ProducerBatch::from_header(&header) else {
            return ProducerCheck::Plain;
        };
        // Only a whole, intact batch may be answered as a duplicate; damage is the log's to
        // report.
        if check_batch(records).is_err() {
            return ProducerCheck::Plain;
        }
        if header.size() != records.len() {
            // Kafka: a v3+ produce request carries exactly one batch per partition, and
            // sequence checking relies on it.
            return ProducerCheck::Refused(ProducerRefusal::InvalidRecord(
                "an idempotent produce request must carry exactly one record batch per partition",
            ));
        }
        if header.base_sequence < 0 || header.producer_epoch < 0 {
            return ProducerCheck::Refused(ProducerRefusal::InvalidRecord(
                "a batch with a producer id must carry a producer epoch and a base sequence",
            ));
        }
        match self.states.check(&batch) {
            Ok(Check::Append) => ProducerCheck::Append(batch),
            Ok(Check::Duplicate(original)) => ProducerCheck::Duplicate {
                first_offset: original.first_offset,
                last_offset: original.last_offset,
            },
            Err(e) => ProducerCheck::Refused(e.into()),
        }
    }

    /// Records a batch the leader just appended to `log`, and snapshots if the append rolled a
    /// segment.
    pub fn record_appended(
        &mut self,
        log: &dyn PartitionLog,
        batch: &ProducerBatch,
        info: &AppendInfo,
    ) {
        self.states
            .record(batch, info.first_offset, info.last_offset);
        self.maybe_snapshot_after_roll(log);
    }

    /// Records the batches a follower copied from its leader (`records`, exactly as appended).
    pub fn record_replicated(&mut self, log: &dyn PartitionLog, records: &[u8]) {
        let end = log.log_end_offset();
        let mut rest = records;
        while let Ok(header) = BatchHeader::parse(rest) {
            if header.size() > rest.len() || header.last_offset() >= end {
                break; // a partial trailing batch, which the append left out
            }
            if let Some(batch) = ProducerBatch::from_header(&header) {
                self.states
                    .record(&batch, header.base_offset, header.last_offset());
            }
            rest = &rest[header.size()..];
        }
        self.maybe_snapshot_after_roll(log);
    }

    /// Rebuilds the producer state after a restart: the newest usable snapshot in
    /// `snapshot_dir` at or below the log end, then the log after it.
    pub fn recover(&mut self, log: &mut dyn PartitionLog, snapshot_dir: Option<PathBuf>) {
        self.snapshot_dir = snapshot_dir;
        self.rebuild(log);
    }

    /// Rebuilds the producer state after the log was truncated.
    pub fn after_truncation(&mut self, log: &mut dyn PartitionLog) {
        self.rebuild(log);
    }

    /// Periodic work: forgets producers idle for `expiration_ms` and snapshots after a
    /// time-based roll.
    pub fn maintain(&mut self, log: &dyn PartitionLog, now_ms: i64, expiration_ms: i64) {
        let expired = self.states.expire(now_ms, expiration_ms);
        if expired > 0 {
            tracing::debug!(expired, "expired idle producer ids");
        }
        self.maybe_snapshot_after_roll(log);
    }

    /// Writes a durable snapshot at the log end offset (clean shutdown).
    pub fn snapshot_at_end(&mut self, log: &dyn PartitionLog) {
        let end = log.log_end_offset();
        self.snapshot(end, true);
    }

    /// Loads the newest snapshot at or below the log end and replays the log after it. Snapshots
    /// above the log end are deleted first: they describe batches that are gone (truncated, or
    /// lost with an unflushed tail in a crash), and once the log grew past them again they would
    /// be mistaken for the state of the new batches.
    fn rebuild(&mut self, log: &mut dyn PartitionLog) {
        let end = log.log_end_offset();
        if let Some(dir) = &self.snapshot_dir
            && let Err(e) = producer_snapshot::remove_above(dir, end)
        {
            tracing::warn!(error = %e, "could not remove producer snapshots past the log end");
        }
        let (from, states) = match &self.snapshot_dir {
            Some(dir) => match producer_snapshot::latest_at_or_below(dir, end) {
                Ok(Some((offset, states))) => (offset, states),
                Ok(None) => (0, ProducerStates::new()),
                Err(e) => {
                    tracing::warn!(error = %e, "producer snapshots unreadable; replaying the log");
                    (0, ProducerStates::new())
                }
            },
            None => (0, ProducerStates::new()),
        };
        self.states = states;
        let from = from.max(log.log_start_offset());
        if let Err(e) = replay(log, &mut self.states, from) {
            // The log was just opened or truncated by this process; a read failure here is
            // a disk failure, which the next append or fetch reports too.
            tracing::error!(error = %e, "could not replay the log into the producer state");
        }
        self.segments_seen = log.segment_count();
    }
}

impl Producers {
    /// Snapshots at the log end if a segment rolled since the last look.
    fn maybe_snapshot_after_roll(&mut self, log: &dyn PartitionLog) {
        let count = log.segment_count();
        let rolled = count > self.segments_seen;
        self.segments_seen = count;
        if rolled {
            self.snapshot(log.log_end_offset(), false);
        }
    }

    fn snapshot(&mut self, offset: Offset, durable: bool) {
        let Some(dir) = &self.snapshot_dir else {
            return;
        };
        if let Err(e) = producer_snapshot::write(dir, offset, &self.states, durable) {
            tracing::warn!(error = %e, "could not write a producer snapshot");
        }
    }
}

/// Records every producer batch of `log` from `from` to its end into `states`.
fn replay(
    log: &mut dyn PartitionLog,
    states: &mut ProducerStates,
    from: Offset,
) -> crate::log::Result<()> {
    let end = log.log_end_offset();
    let mut offset = from;
    while offset < end {
        let read = log.read(offset, REPLAY_READ_BYTES, end, true)?;
        if read.records.is_empty() {
            break;
        }
        let mut rest = &read.records[..];
        while let Ok(header) = BatchHeader::parse(rest) {
            if header.size() > rest.len() {
                break;
            }
            // A read starts at the batch holding `offset`, which may begin before it.
            if header.base_offset >= offset
                && let Some(batch) = ProducerBatch::from_header(&header)
            {
                states.record(&batch, header.base_offset, header.last_offset());
            }
            rest = &rest[header.size()..];
        }
        if read.next_offset <= offset {
            break;
        }
        offset = read.next_offset;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::partition::PartitionInner;
    use super::*;
    use crate::log::LogConfig;
    use crate::log::MemoryLog;
    use bytes::BytesMut;

    fn idempotent_batch(pid: i64, epoch: i16, seq: i32, records: usize) -> BytesMut {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = (0..records)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: seq + i as i32,
                timestamp: 1_000,
                key: None,
                value: Some(bytes::Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf
    }

    fn partition() -> PartitionInner {
        let log = MemoryLog::new(LogConfig::default());
        PartitionInner::for_tests(Box::new(log))
    }

    fn produce(inner: &mut PartitionInner, batch: BytesMut) -> ProducerCheck {
        let check = inner.check_producer_batch(&batch);
        if let ProducerCheck::Append(b) = &check {
            let info = inner.log.append_as_leader(batch, 0, 2_000).unwrap();
            let b = *b;
            inner.record_appended(&b, &info);
        }
        check
    }

    #[test]
    fn duplicates_are_answered_from_the_state_and_not_appended() {
        let mut inner = partition();
        assert!(matches!(
            produce(&mut inner, idempotent_batch(1, 0, 0, 3)),
            ProducerCheck::Append(_)
        ));
        assert_eq!(
            produce(&mut inner, idempotent_batch(1, 0, 0, 3)),
            ProducerCheck::Duplicate {
                first_offset: 0,
                last_offset: 2
            }
        );
        assert_eq!(inner.log.log_end_offset(), 3);
        let gap = produce(&mut inner, idempotent_batch(1, 0, 5, 1));
        assert!(matches!(&gap, ProducerCheck::Refused(r) if r.kafka_code() == 45));
        assert_eq!(inner.log.log_end_offset(), 3);
    }

    #[test]
    fn two_batches_in_one_idempotent_request_are_invalid() {
        let inner = partition();
        let mut both = idempotent_batch(1, 0, 0, 1);
        both.extend_from_slice(&idempotent_batch(1, 0, 1, 1));
        let check = inner.check_producer_batch(&both);
        assert!(matches!(&check, ProducerCheck::Refused(r) if r.kafka_code() == 87));
    }

    #[test]
    fn a_rebuilt_state_matches_the_live_one_and_follows_truncation() {
        let mut inner = partition();
        for (pid, seq) in [(1, 0), (2, 0), (1, 2), (2, 2), (1, 4)] {
            produce(&mut inner, idempotent_batch(pid, 0, seq, 2));
        }
        let live = inner.producers.states.clone();
        inner.recover_producers(None);
        assert_eq!(inner.producers.states, live);
        // Cut the last batch (offsets 8..9): producer 1 is back at its second batch.
        inner.log.truncate_to(8).unwrap();
        inner.producers_after_truncation();
        let entry = inner.producers.states.get(1).unwrap();
        assert_eq!(entry.batches.back().unwrap().last_seq, 3);
        assert!(matches!(
            inner.check_producer_batch(&idempotent_batch(1, 0, 4, 2)),
            ProducerCheck::Append(_)
        ));
    }

    #[test]
    fn maintenance_forgets_producers_idle_past_the_expiration() {
        let mut inner = partition();
        produce(&mut inner, idempotent_batch(1, 0, 0, 1)); // batch timestamps are 1_000
        inner.maintain_producers(1_000 + 59_999, 60_000);
        assert_eq!(inner.producers.states.len(), 1);
        inner.maintain_producers(1_000 + 60_000, 60_000);
        assert!(inner.producers.states.is_empty());
    }

    #[test]
    fn a_follower_builds_the_leaders_state_from_replicated_bytes() {
        let mut leader = partition();
        for seq in [0, 3, 6] {
            produce(&mut leader, idempotent_batch(9, 1, seq, 3));
        }
        let end = leader.log.log_end_offset();
        let bytes = leader.log.read(0, 1 << 20, end, true).unwrap().records;
        let mut follower = partition();
        follower
            .log
            .append_as_follower(BytesMut::from(&bytes[..]), 2_000)
            .unwrap();
        follower.record_replicated(&bytes);
        assert_eq!(follower.producers.states, leader.producers.states);
    }
}
