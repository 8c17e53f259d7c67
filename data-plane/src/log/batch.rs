//! Sans-IO parsing, checking and in-place rewriting of record batch v2 headers.
//!
//! The log stores batches exactly as producers encoded them. It reads the fixed 61-byte
//! header, checks the CRC, and rewrites the few fields the broker owns. This module never looks
//! at the records: the checks that decode them, within bounds, build on it in
//! [`super::records`] (a producer's batch before it is written, [`super::records::validate`],
//! and a ListOffsets-by-timestamp query, [`super::records::first_record_at_or_after`]); never on
//! the fetch or replication path.
//!
//! ```text
//! offset size field                 CRC-covered  rewritten by the log
//!  0     8    baseOffset                no       yes (offset assignment)
//!  8     4    batchLength               no       no  (bytes after this field)
//! 12     4    partitionLeaderEpoch      no       yes (leader epoch stamp)
//! 16     1    magic (= 2)               no       no
//! 17     4    crc (CRC-32C)             -        only with LogAppendTime
//! 21     2    attributes                yes      bit 3 with LogAppendTime
//!              bits 0-2 compression, 3 timestampType, 4 transactional, 5 control,
//!              6 hasDeleteHorizon
//! 23     4    lastOffsetDelta           yes      no
//! 27     8    baseTimestamp             yes      no
//! 35     8    maxTimestamp              yes      with LogAppendTime
//! 43     8    producerId                yes      no
//! 51     2    producerEpoch             yes      no
//! 53     4    baseSequence              yes      no
//! 57     4    recordsCount              yes      no
//! 61     ..   records                   yes      no
//! ```
//!
//! [`check_batch`] is the header half of Kafka's `LogValidator` for magic v2 (completeness,
//! length, magic, CRC); [`super::records::validate`] adds the rest.

use super::Offset;

/// Bytes before the part counted by `batchLength`: baseOffset and batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header, up to and including recordsCount.
pub const HEADER_LEN: usize = 61;
/// Smallest legal `batchLength`: a header with no records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only record batch format the log accepts.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

/// Attribute bit: the timestamps are LogAppendTime (set by the broker), not CreateTime.
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
/// Attribute bit: the batch is part of a transaction.
const TRANSACTIONAL_BIT: i16 = 1 << 4;
/// Attribute bit: the batch holds control records (transaction markers).
const CONTROL_BIT: i16 = 1 << 5;

const _: () = assert!(MIN_BATCH_LENGTH == 49);
const _: () = assert!(RECORDS_COUNT_AT + 4 == HEADER_LEN);

/// Why a buffer of record batches was refused. Each variant maps to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer ends inside a batch (a partial batch is never accepted).
    #[error("batch at byte {position} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Byte position of the batch in the buffer.
        position: usize,
        /// Bytes the batch header says it needs.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// The magic byte is not 2; message sets v0 and v1 are not supported.
    #[error("record batch magic {magic} is not supported (only magic 2)")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// `batchLength` is smaller than a header.
    #[error("batch length {length} is smaller than the {MIN_BATCH_LENGTH}-byte minimum")]
    BadLength {
        /// The batchLength field.
        length: i32,
    },
    /// The CRC-32C stored in the batch does not match its contents.
    #[error("batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes from attributes to the end.
        computed: u32,
    },
    /// A batch is larger than `max.message.bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge {
        /// Size of the batch including its 12-byte log overhead.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The batch is well-formed bytes but not an acceptable record batch.
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// The batch's compressed records are not a stream its codec can decode.
    #[error("corrupt compressed records: {0}")]
    Decompression(String),
    /// The request carried no batch at all.
    #[error("no record batch in the request")]
    Empty,
}

impl BatchError {
    /// The Kafka error code for this error.
    ///
    /// ```text
    /// Truncated, BadLength, CrcMismatch, magic > 2,
    /// Decompression                                 -> 2  CORRUPT_MESSAGE
    /// TooLarge                                      -> 10 MESSAGE_TOO_LARGE
    /// InvalidRecord, Empty, magic 0 or 1            -> 87 INVALID_RECORD
    /// ```
    ///
    /// Records that do not fit their batch (a recordsCount the bytes cannot hold, records
    /// that expand past the decompression bound, a record that does not decode) are
    /// INVALID_RECORD, as Kafka's `LogValidator` answers an `InvalidRecordException`; a
    /// stream the codec rejects is CORRUPT_MESSAGE, as Kafka answers a
    /// `CorruptRecordException`.
    ///
    /// Magic 0/1 maps to INVALID_RECORD because that is what Kafka answers when a produce
    /// request (v3+) carries an old message format.
    pub fn kafka_code(&self) -> i16 {
        match self {
            BatchError::Truncated { .. }
            | BatchError::BadLength { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::Decompression(_) => 2,
            BatchError::UnsupportedMagic { magic } if *magic > MAGIC_V2 => 2,
            BatchError::UnsupportedMagic { .. } => 87,
            BatchError::TooLarge { .. } => 10,
            BatchError::InvalidRecord(_) | BatchError::Empty => 87,
        }
    }
}

/// Who is appending, which decides how strictly a batch is checked (Kafka's `AppendOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A producer (or the broker's own group coordinator): full checks, including
    /// max.message.bytes, count consistency, and every record decoded within the bound of
    /// [`super::records::decompressed_limit`].
    Client,
    /// A follower copying the leader: structural checks only, sizes are not limited.
    Replication,
}

/// The timestamp type recorded in a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Timestamps were set by the producer.
    CreateTime,
    /// maxTimestamp was set by the broker when appending.
    LogAppendTime,
}

/// The fixed header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: Offset,
    /// Bytes after the batchLength field; the batch occupies `LOG_OVERHEAD + batch_length`.
    pub batch_length: i32,
    /// Leader epoch of the leader that appended the batch (-1 if none).
    pub partition_leader_epoch: i32,
    /// Format version; always 2 for a parsed header.
    pub magic: i8,
    /// CRC-32C over attributes..end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset of the last record minus base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time with LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. Checks the magic and that `batchLength` is at
    /// least a header; does not check the CRC or that the whole batch is present.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() <= MAGIC_AT {
            let needed = MAGIC_AT + 1;
            return Err(BatchError::Truncated {
                position: 0,
                needed,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        if buf.len() < HEADER_LEN {
            let available = buf.len();
            return Err(BatchError::Truncated {
                position: 0,
                needed: HEADER_LEN,
                available,
            });
        }
        let batch_length = read_i32(buf, LENGTH_AT);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadLength {
                length: batch_length,
            });
        }
        Ok(BatchHeader {
            base_offset: read_i64(buf, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: read_i32(buf, LEADER_EPOCH_AT),
            magic,
            crc: read_i32(buf, CRC_AT) as u32,
            attributes: read_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: read_i64(buf, PRODUCER_ID_AT),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(buf, BASE_SEQUENCE_AT),
            records_count: read_i32(buf, RECORDS_COUNT_AT),
        })
    }

    /// Total bytes the batch occupies, log overhead included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> Offset {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> Offset {
        self.last_offset().saturating_add(1)
    }

    /// Whether maxTimestamp is a LogAppendTime set by the broker.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// A batch found in a buffer: its header and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Byte position of the batch in the buffer it was found in.
    pub position: usize,
    /// Its parsed header.
    pub header: BatchHeader,
}

/// Computes the CRC-32C a batch should carry (over attributes..end of `batch`).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Parses and fully checks one batch at the start of `buf`: header, complete length, CRC.
/// Returns the header; the batch is `buf[..header.size()]`.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    let size = header.size();
    if size > buf.len() {
        return Err(BatchError::Truncated {
            position: 0,
            needed: size,
            available: buf.len(),
        });
    }
    let computed = compute_crc(&buf[..size]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Overwrites the base offset of the batch at the start of `batch` (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], offset: Offset) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&offset.to_be_bytes());
}

/// Overwrites the partition leader epoch of the batch at the start of `batch` (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks `batch` (exactly one whole batch) as LogAppendTime with `timestamp_ms` as its
/// maxTimestamp, and recomputes the CRC because both fields are covered by it.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = read_i16(batch, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    let mut bytes = [0; 2];
    bytes.copy_from_slice(&buf[at..at + 2]);
    i16::from_be_bytes(bytes)
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(bytes)
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{BatchSpec, batch, batch_with};

    #[test]
    fn parse_reads_every_field() {
        let spec = BatchSpec {
            records: 3,
            timestamp_ms: 1_000,
            producer_id: 7,
            ..Default::default()
        };
        let bytes = batch_with(&spec);
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.size(), bytes.len());
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.last_offset(), 2);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(h.producer_id, 7);
        assert_eq!(h.base_sequence, 0);
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert!(!h.is_control() && !h.is_transactional());
        assert_eq!(compute_crc(&bytes), h.crc);
    }

    #[test]
    fn rewrites_keep_the_crc_valid() {
        let mut buf = batch(4, 100).to_vec();
        set_base_offset(&mut buf, 1_234);
        set_partition_leader_epoch(&mut buf, 9);
        let h = check_batch(&buf).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (1_234, 9, 1_237)
        );
        set_log_append_time(&mut buf, 55_555);
        let h = check_batch(&buf).unwrap();
        assert_eq!(h.max_timestamp, 55_555);
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.base_offset, 1_234);
    }
}
