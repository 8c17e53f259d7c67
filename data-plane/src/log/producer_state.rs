//! Idempotent producers' state in one partition: the sans-IO core that deduplicates retries.
//!
//! An idempotent producer numbers its records per partition (`baseSequence` in every batch,
//! under a producer id and epoch it got from InitProducerId). The partition keeps, per producer
//! id, the current epoch and the metadata of the last [`BATCHES_PER_PRODUCER`] batches it
//! appended. The leader asks [`ProducerStates::check`] before appending a batch and records the
//! batch with [`ProducerStates::record`] after; followers and crash recovery call only
//! `record`, with the batches read back from the log, so every replica builds the same table and
//! a new leader deduplicates the retries of batches its predecessor wrote.
//!
//! This module does no I/O and never reads the clock: time (for expiry) comes in as arguments
//! and the batches' own timestamps. [`ProducerStates::encode`] and [`ProducerStates::decode`]
//! turn the table into the bytes of a snapshot file (`log::producer_snapshot` stores them).
//!
//! # Rules (as Kafka's `ProducerStateManager` / `ProducerAppendInfo`, non-transactional)
//!
//! ```text
//! batch epoch == current, same (first seq, last seq) as a cached batch -> Duplicate(original offsets)
//! batch epoch <  current                                             -> INVALID_PRODUCER_EPOCH (47)
//! batch epoch >  current (a bumped or reset producer), first seq != 0 -> OUT_OF_ORDER_SEQUENCE_NUMBER (45)
//! batch epoch == current, first seq != last seq + 1 (mod i32::MAX+1)  -> OUT_OF_ORDER_SEQUENCE_NUMBER (45)
//! producer unknown here (new, expired, or its records deleted)       -> accepted at any sequence
//! ```
//!
//! The last rule is Kafka's since 2.5 (KIP-360): a broker that lost a producer's state accepts
//! its next batch rather than answering UNKNOWN_PRODUCER_ID (59), which older brokers returned
//! and current ones no longer do on Produce; so Ferry never answers 59 either. Sequences wrap
//! from `i32::MAX` to 0.
//!
//! # Deliberate simplifications
//! - No transactions: no ongoing-transaction tracking, no coordinator epoch, no last stable
//!   offset. Transactional batches never reach this table (the broker refuses transactional ids).
//! - Producers are not evicted when retention or DeleteRecords removes their batches; they
//!   expire after `producer.id.expiration.ms` like every other entry.

use std::collections::{BTreeMap, VecDeque};

use super::Offset;

/// A producer id, handed out by InitProducerId from the controllers' blocks; a producer epoch,
/// bumped when a producer resets its sequences (KIP-360) or restarts.
pub use ferry_kafka_config::ids::{ProducerEpoch, ProducerId};

/// A record sequence number within one producer and partition; wraps at `i32::MAX`.
pub type Sequence = i32;

/// How many batches per producer are remembered for deduplication. Kafka keeps five because a
/// producer has at most five requests in flight per partition
/// (`max.in.flight.requests.per.connection` ≤ 5 with idempotence).
pub const BATCHES_PER_PRODUCER: usize = 5;

/// Kafka's default `producer.id.expiration.ms`: one day (from the config catalog).
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 =
    ferry_kafka_config::default_int("producer.id.expiration.ms");

/// The producer fields of one record batch, before the log assigns offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// The producer.
    pub producer_id: ProducerId,
    /// Its epoch when it wrote the batch.
    pub epoch: ProducerEpoch,
    /// Sequence of the first record.
    pub first_seq: Sequence,
    /// Sequence of the last record (wrapped past `i32::MAX`).
    pub last_seq: Sequence,
    /// The batch's maxTimestamp: when the producer was last active, for expiry.
    pub max_timestamp: i64,
}

impl ProducerBatch {
    /// The producer fields of a batch header; `None` for batches without a producer id
    /// (plain, non-idempotent producers).
    pub fn from_header(header: &super::BatchHeader) -> Option<Self> {
        if header.producer_id < 0 {
            return None;
        }
        Some(Self {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            last_seq: increment_sequence(header.base_sequence, header.last_offset_delta),
            max_timestamp: header.max_timestamp,
        })
    }
}

/// What the table remembers of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: Sequence,
    /// Sequence of the last record.
    pub last_seq: Sequence,
    /// Offset the log gave the first record.
    pub first_offset: Offset,
    /// Offset the log gave the last record.
    pub last_offset: Offset,
}

/// One producer's state in the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The latest epoch seen; older epochs are fenced.
    pub epoch: ProducerEpoch,
    /// The last batches appended in `epoch`, oldest first, at most [`BATCHES_PER_PRODUCER`].
    pub batches: VecDeque<BatchMetadata>,
    /// maxTimestamp of the latest batch: the producer expires this long after it.
    pub last_timestamp: i64,
}

impl ProducerEntry {
    /// The last sequence appended in the current epoch, if any.
    fn last_seq(&self) -> Option<Sequence> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// What to do with a batch that passed [`ProducerStates::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A new batch: append it, then [`ProducerStates::record`] it.
    Append,
    /// A retry of a batch already in the log: answer with its original offsets, append nothing.
    Duplicate(BatchMetadata),
}

/// Why a batch was refused; each maps to the Kafka error code the producer acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The producer was fenced by a newer epoch (a newer incarnation or a bump).
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    StaleEpoch {
        /// The producer.
        producer_id: ProducerId,
        /// The batch's epoch.
        epoch: ProducerEpoch,
        /// The partition's current epoch for the producer.
        current: ProducerEpoch,
    },
    /// The batch does not follow the last one appended: a gap (or a duplicate older than the
    /// last five batches). Nothing is appended; the producer resets its sequence.
    #[error(
        "out of order sequence for producer {producer_id} epoch {epoch}: \
         expected {expected}, got {got}"
    )]
    OutOfOrder {
        /// The producer.
        producer_id: ProducerId,
        /// The batch's epoch.
        epoch: ProducerEpoch,
        /// The sequence that would have been in order.
        expected: Sequence,
        /// The batch's first sequence.
        got: Sequence,
    },
}

impl SequenceError {
    /// The Kafka error code answered on Produce.
    ///
    /// ```text
    /// StaleEpoch -> 47 INVALID_PRODUCER_EPOCH
    /// OutOfOrder -> 45 OUT_OF_ORDER_SEQUENCE_NUMBER
    /// ```
    pub fn kafka_code(&self) -> i16 {
        match self {
            Self::StaleEpoch { .. } => 47,
            Self::OutOfOrder { .. } => 45,
        }
    }
}

/// The producer state of one partition replica (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    /// Entries by producer id (sorted, so snapshots are deterministic).
    producers: BTreeMap<ProducerId, ProducerEntry>,
}

impl ProducerStates {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of `producer_id`, if known.
    pub fn get(&self, producer_id: ProducerId) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides whether the leader appends `batch`, answers it as a duplicate, or refuses it.
    /// Changes nothing: call [`Self::record`] once the batch is in the log.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Check, SequenceError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(Check::Append);
        };
        if batch.epoch == entry.epoch {
            let duplicate = entry
                .batches
                .iter()
                .find(|b| b.first_seq == batch.first_seq && b.last_seq == batch.last_seq);
            if let Some(original) = duplicate {
                return Ok(Check::Duplicate(*original));
            }
        }
        if batch.epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                current: entry.epoch,
            });
        }
        let expected = match (batch.epoch > entry.epoch, entry.last_seq()) {
            // A new epoch starts its sequences again at 0.
            (true, _) => 0,
            (false, Some(last)) => increment_sequence(last, 1),
            // The epoch is known but none of its batches (a snapshot written by another
            // version could hold such an entry): Kafka expects the epoch's first batch.
            (false, None) => 0,
        };
        if batch.first_seq != expected {
            return Err(SequenceError::OutOfOrder {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                expected,
                got: batch.first_seq,
            });
        }
        Ok(Check::Append)
    }

    /// Remembers a batch that is in the log at `first_offset..=last_offset`: appended by this
    /// leader, copied from the leader, or read back during recovery. A newer epoch replaces the
    /// producer's batches; the oldest batch beyond [`BATCHES_PER_PRODUCER`] is forgotten.
    pub fn record(&mut self, batch: &ProducerBatch, first_offset: Offset, last_offset: Offset) {
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: batch.epoch,
                batches: VecDeque::new(),
                last_timestamp: batch.max_timestamp,
            });
        if batch.epoch != entry.epoch {
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            first_offset,
            last_offset,
        });
        while entry.batches.len() > BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.last_timestamp = entry.last_timestamp.max(batch.max_timestamp);
    }

    /// Forgets producers whose latest batch is at least `expiration_ms` older than `now_ms`
    /// (`producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }

    /// The snapshot body (see `log::producer_snapshot` for the framing and checksum):
    ///
    /// ```text
    /// producerCount i32
    /// per producer: producerId i64 | epoch i16 | lastTimestamp i64 | batchCount i8
    ///               per batch: firstSeq i32 | lastSeq i32 | firstOffset i64 | lastOffset i64
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.producers.len() * 64);
        out.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        for (id, entry) in &self.producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                out.extend_from_slice(&batch.first_seq.to_be_bytes());
                out.extend_from_slice(&batch.last_seq.to_be_bytes());
                out.extend_from_slice(&batch.first_offset.to_be_bytes());
                out.extend_from_slice(&batch.last_offset.to_be_bytes());
            }
        }
        out
    }

    /// Parses what [`Self::encode`] wrote; `None` if the bytes are not such a body (the
    /// caller has already checked the checksum, so this means a bug or a foreign file).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader { bytes, at: 0 };
        let count = reader.i32()?;
        if count < 0 {
            return None;
        }
        let mut producers = BTreeMap::new();
        for _ in 0..count {
            let id = reader.i64()?;
            let epoch = reader.i16()?;
            let last_timestamp = reader.i64()?;
            let batch_count = reader.u8()? as usize;
            if batch_count > BATCHES_PER_PRODUCER {
                return None;
            }
            let mut batches = VecDeque::with_capacity(batch_count);
            for _ in 0..batch_count {
                batches.push_back(BatchMetadata {
                    first_seq: reader.i32()?,
                    last_seq: reader.i32()?,
                    first_offset: reader.i64()?,
                    last_offset: reader.i64()?,
                });
            }
            let entry = ProducerEntry {
                epoch,
                batches,
                last_timestamp,
            };
            if producers.insert(id, entry).is_some() {
                return None;
            }
        }
        (reader.at == bytes.len()).then_some(Self { producers })
    }
}

/// `sequence + increment`, wrapping from `i32::MAX` to 0 as producers do.
pub fn increment_sequence(sequence: Sequence, increment: i32) -> Sequence {
    let next = i64::from(sequence) + i64::from(increment);
    (next % (i64::from(i32::MAX) + 1)) as Sequence
}

/// A big-endian cursor over a snapshot body.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        slice.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: ProducerId = 7;

    fn batch(epoch: ProducerEpoch, first_seq: Sequence, records: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: PID,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, records - 1),
            max_timestamp: 1_000,
        }
    }

    /// Checks and records `batch` as a leader would, at the next offsets after `*end`.
    fn append(states: &mut ProducerStates, end: &mut Offset, b: ProducerBatch) -> Check {
        let check = states.check(&b).expect("batch accepted");
        if check == Check::Append {
            let count = i64::from(b.last_seq.wrapping_sub(b.first_seq)) + 1;
            states.record(&b, *end, *end + count - 1);
            *end += count;
        }
        check
    }

    #[test]
    fn a_new_producer_is_accepted_at_any_sequence() {
        let states = ProducerStates::new();
        assert_eq!(states.check(&batch(0, 0, 3)), Ok(Check::Append));
        assert_eq!(states.check(&batch(0, 42, 3)), Ok(Check::Append));
    }

    #[test]
    fn batches_in_sequence_are_appended() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        assert_eq!(append(&mut states, &mut end, batch(0, 0, 3)), Check::Append);
        assert_eq!(append(&mut states, &mut end, batch(0, 3, 2)), Check::Append);
        assert_eq!(end, 5);
        assert_eq!(states.get(PID).unwrap().last_seq(), Some(4));
    }

    #[test]
    fn a_retried_batch_is_a_duplicate_with_its_original_offsets() {
        let mut states = ProducerStates::new();
        let mut end = 100;
        append(&mut states, &mut end, batch(0, 0, 3));
        append(&mut states, &mut end, batch(0, 3, 2));
        let expected = BatchMetadata {
            first_seq: 0,
            last_seq: 2,
            first_offset: 100,
            last_offset: 102,
        };
        assert_eq!(
            states.check(&batch(0, 0, 3)),
            Ok(Check::Duplicate(expected))
        );
    }

    #[test]
    fn only_the_last_five_batches_are_deduplicated() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        for seq in 0..6 {
            append(&mut states, &mut end, batch(0, seq, 1));
        }
        assert_eq!(states.get(PID).unwrap().batches.len(), BATCHES_PER_PRODUCER);
        assert!(matches!(
            states.check(&batch(0, 1, 1)),
            Ok(Check::Duplicate(_))
        ));
        // The first batch fell out of the window: its retry is out of order, not a duplicate.
        assert!(matches!(
            states.check(&batch(0, 0, 1)),
            Err(SequenceError::OutOfOrder {
                expected: 6,
                got: 0,
                ..
            })
        ));
    }

    #[test]
    fn a_gap_is_out_of_order() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        append(&mut states, &mut end, batch(0, 0, 3));
        let error = states.check(&batch(0, 5, 1)).unwrap_err();
        assert_eq!(
            error,
            SequenceError::OutOfOrder {
                producer_id: PID,
                epoch: 0,
                expected: 3,
                got: 5
            }
        );
        assert_eq!(error.kafka_code(), 45);
    }

    #[test]
    fn an_older_epoch_is_fenced() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        append(&mut states, &mut end, batch(2, 0, 1));
        let error = states.check(&batch(1, 1, 1)).unwrap_err();
        assert!(matches!(
            error,
            SequenceError::StaleEpoch { current: 2, .. }
        ));
        assert_eq!(error.kafka_code(), 47);
    }

    #[test]
    fn a_newer_epoch_must_start_at_sequence_zero_and_resets_the_window() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        append(&mut states, &mut end, batch(0, 0, 5));
        assert!(matches!(
            states.check(&batch(1, 5, 1)),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(append(&mut states, &mut end, batch(1, 0, 1)), Check::Append);
        let entry = states.get(PID).unwrap();
        assert_eq!((entry.epoch, entry.batches.len()), (1, 1));
        // The old epoch's batch is no longer a duplicate; its epoch is fenced.
        assert!(matches!(
            states.check(&batch(0, 0, 5)),
            Err(SequenceError::StaleEpoch { .. })
        ));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        let mut states = ProducerStates::new();
        let mut end = 0;
        let near_end = batch(0, i32::MAX - 1, 2);
        assert_eq!(near_end.last_seq, i32::MAX);
        append(&mut states, &mut end, near_end);
        assert_eq!(append(&mut states, &mut end, batch(0, 0, 2)), Check::Append);
        let wrapping = batch(0, 2, 1);
        assert_eq!(states.check(&wrapping), Ok(Check::Append));
    }

    #[test]
    fn a_batch_spanning_the_wrap_is_remembered_with_its_wrapped_last_sequence() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        let spanning = batch(0, i32::MAX - 1, 4);
        assert_eq!(spanning.last_seq, 1);
        append(&mut states, &mut end, spanning);
        assert!(matches!(states.check(&spanning), Ok(Check::Duplicate(_))));
        assert_eq!(states.check(&batch(0, 2, 1)), Ok(Check::Append));
    }

    #[test]
    fn producers_expire_after_the_expiration_time_since_their_last_batch() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        append(&mut states, &mut end, batch(0, 0, 1)); // max_timestamp 1000
        assert_eq!(states.expire(1_000 + 999, 1_000), 0);
        assert_eq!(states.len(), 1);
        assert_eq!(states.expire(1_000 + 1_000, 1_000), 1);
        assert!(states.is_empty());
        // Once expired the producer is unknown again and accepted at any sequence.
        assert_eq!(states.check(&batch(0, 57, 1)), Ok(Check::Append));
    }

    #[test]
    fn replaying_the_same_batches_builds_the_same_table() {
        let batches = [batch(0, 0, 2), batch(0, 2, 3), batch(1, 0, 1)];
        let mut leader = ProducerStates::new();
        let mut end = 0;
        let mut placed = Vec::new();
        for b in batches {
            let start = end;
            append(&mut leader, &mut end, b);
            placed.push((b, start, end - 1));
        }
        let mut follower = ProducerStates::new();
        for (b, first, last) in placed {
            follower.record(&b, first, last);
        }
        assert_eq!(leader, follower);
    }

    #[test]
    fn snapshot_body_round_trips() {
        let mut states = ProducerStates::new();
        let mut end = 0;
        for seq in 0..7 {
            append(&mut states, &mut end, batch(3, seq * 2, 2));
        }
        let other = ProducerBatch {
            producer_id: 99,
            ..batch(0, 0, 1)
        };
        append(&mut states, &mut end, other);
        let bytes = states.encode();
        assert_eq!(ProducerStates::decode(&bytes), Some(states.clone()));
        assert_eq!(ProducerStates::decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(ProducerStates::decode(&longer), None);
        assert_eq!(
            ProducerStates::decode(&ProducerStates::new().encode()),
            Some(ProducerStates::new())
        );
    }
}
