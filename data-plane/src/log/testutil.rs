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

/// One record encoded by hand as Kafka's `DefaultRecord` (key `k`, null value), with any
/// timestamp delta and header count: what an attacker writes, which no encoder would.
/// `header_bytes` follow the count (the headers, if the count is honest).
pub fn raw_record(
    timestamp_delta: i64,
    offset_delta: i32,
    headers: i32,
    header_bytes: &[u8],
) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    put_varlong(&mut body, timestamp_delta);
    put_varlong(&mut body, offset_delta.into());
    put_varlong(&mut body, 1); // key length
    body.push(b'k');
    put_varlong(&mut body, -1); // null value
    put_varlong(&mut body, headers.into());
    body.extend_from_slice(header_bytes);
    let mut record = Vec::new();
    put_varlong(&mut record, body.len() as i64);
    record.extend(body);
    record
}

/// A v2 batch of `count` records (lastOffsetDelta `count - 1`) around `section`, which is
/// already compressed as `attributes` says, with base offset 0 and a correct CRC. Its
/// maxTimestamp is `base_timestamp`.
pub fn raw_batch(base_timestamp: i64, count: i32, attributes: i16, section: &[u8]) -> Vec<u8> {
    let batch_length = i32::try_from(super::batch::MIN_BATCH_LENGTH as usize + section.len())
        .expect("a small test batch");
    let mut b = Vec::new();
    b.extend(0i64.to_be_bytes()); // baseOffset
    b.extend(batch_length.to_be_bytes());
    b.extend((-1i32).to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend(0u32.to_be_bytes()); // crc, set below
    b.extend(attributes.to_be_bytes());
    b.extend((count - 1).to_be_bytes()); // lastOffsetDelta
    b.extend(base_timestamp.to_be_bytes());
    b.extend(base_timestamp.to_be_bytes()); // maxTimestamp
    b.extend((-1i64).to_be_bytes()); // producerId
    b.extend((-1i16).to_be_bytes()); // producerEpoch
    b.extend((-1i32).to_be_bytes()); // baseSequence
    b.extend(count.to_be_bytes());
    b.extend_from_slice(section);
    let crc = super::batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// A zig-zag varlong, as records encode their varints.
fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}
