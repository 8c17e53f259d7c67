//! Test helpers: real v2 record batches built with `kafka_protocol`'s encoder.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// What batch to build.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    /// Number of records.
    pub records: usize,
    /// Timestamp of the first record; record `i` gets `timestamp_ms + i`.
    pub timestamp_ms: i64,
    /// Producer id (-1: not idempotent).
    pub producer_id: i64,
    /// Whether to mark the batch as a control batch.
    pub control: bool,
    /// Bytes in each record's value.
    pub value_len: usize,
    /// Compression codec.
    pub compression: Compression,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            records: 1,
            timestamp_ms: 0,
            producer_id: -1,
            control: false,
            value_len: 8,
            compression: Compression::None,
        }
    }
}

/// An uncompressed batch of `records` records with timestamps `timestamp_ms + i`.
pub fn batch(records: usize, timestamp_ms: i64) -> Bytes {
    batch_with(&BatchSpec {
        records,
        timestamp_ms,
        ..Default::default()
    })
}

/// A batch as a producer would send it (base offset 0, leader epoch -1).
pub fn batch_with(spec: &BatchSpec) -> Bytes {
    assert!(spec.records > 0);
    let records: Vec<Record> = (0..spec.records)
        .map(|i| {
            let offset = i as i64;
            // The encoder keeps records in one batch only while offset - sequence is constant:
            // a non-idempotent producer's batch has base sequence -1.
            let sequence = if spec.producer_id >= 0 {
                i as i32
            } else {
                i as i32 - 1
            };
            Record {
                transactional: false,
                control: spec.control,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: spec.producer_id,
                producer_epoch: if spec.producer_id >= 0 { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset,
                sequence,
                timestamp: spec.timestamp_ms + offset,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'v'; spec.value_len])),
                headers: IndexMap::new(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: spec.compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode test batch");
    buf.freeze()
}

/// Several batches concatenated into one produce payload.
pub fn concat(batches: &[Bytes]) -> BytesMut {
    let mut buf = BytesMut::new();
    for b in batches {
        buf.extend_from_slice(b);
    }
    buf
}
