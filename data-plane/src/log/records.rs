//! Bounded decoding of the records inside a v2 record batch.
//!
//! The log stores batches as producers sent them and reads only their 61-byte headers
//! ([`super::batch`]). This module is for the few places that must look at the records
//! themselves: validating a producer's batch before it is written ([`validate`]), answering
//! ListOffsets by timestamp ([`first_record_at_or_after`]), and replaying `__consumer_offsets`.
//! Every size it meets comes from the network or from disk, so each one is checked before it
//! is used:
//!
//! - `recordsCount` must fit in the bytes that carry the records: a record takes at least
//!   [`MIN_RECORD_BYTES`], so an uncompressed batch of `n` bytes of records holds at most
//!   `n / 7` of them ([`check_count`]). This is checked before anything decompresses or
//!   decodes, and nothing ever reserves memory from the count (kafka-protocol's
//!   `RecordBatchDecoder` reserves `recordsCount` records up front, which is why it is not
//!   used on anything read from the network or the log).
//! - Compressed records are inflated by a streaming decoder that stops one byte past
//!   [`decompressed_limit`] ([`decompress`]); a batch that expands further is refused, so a
//!   1 MiB gzip bomb costs at most that bound in memory, never its 1 GiB.
//! - Records are then walked one by one ([`Records`]) without allocating: each length and
//!   each record's header count is checked against the bytes left, each timestamp
//!   (baseTimestamp + timestampDelta) must not overflow, and the walk must find exactly
//!   `recordsCount` records and no trailing bytes.
//!
//! Record layout inside the (decompressed) records section, Kafka's `DefaultRecord`
//! (varints are zig-zag encoded, as in protobuf's sint32/sint64):
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     unused
//! timestampDelta  varlong  timestamp - baseTimestamp
//! offsetDelta     varint   offset - baseOffset
//! keyLength       varint   -1 = null key
//! key             bytes
//! valueLength     varint   -1 = null value
//! value           bytes
//! headersCount    varint
//!   headerKeyLength   varint (>= 0)
//!   headerKey         bytes
//!   headerValueLength varint (-1 = null)
//!   headerValue       bytes
//! ```
//!
//! Snappy is framed the way Kafka's Java client writes it (xerial's `SnappyOutputStream`: a
//! 16-byte header, then blocks each prefixed by its compressed length); a raw snappy block is
//! accepted too. LZ4 is the LZ4 frame format; gzip may hold several concatenated members (as
//! Java's `GZIPInputStream` reads them).
//!
//! Validation ([`validate`]) follows Kafka's `LogValidator` for magic v2: the header
//! ([`super::batch::check_batch`]), then the records (their count against the bytes, bounded
//! decompression, each record decoded, consecutive offset deltas). Deliberately not done (yet):
//! timestamp-difference limits, and the produce rule "exactly one batch per partition" (the
//! broker enforces it for idempotent producers; the log accepts one or more concatenated
//! batches).

use std::borrow::Cow;
use std::io::Read;

use bytes::Bytes;

use super::Offset;
use super::batch::{
    BatchError, BatchHeader, BatchInfo, HEADER_LEN, Origin, TimestampType, check_batch,
};

/// The smallest encoded record: a one-byte length and six one-byte fields (attributes,
/// timestampDelta, offsetDelta, keyLength, valueLength, headersCount). Kafka's
/// `DefaultRecord.MIN_RECORD_SIZE`... is not a public constant; this is the same arithmetic.
pub const MIN_RECORD_BYTES: usize = 7;

/// The smallest encoded record header: a one-byte key length (an empty key) and a one-byte
/// value length (null or empty). A record's header count must fit in its bytes by this
/// measure before any header is read.
pub const MIN_HEADER_BYTES: usize = 2;

/// The least a compressed batch may expand to, whatever the topic's `max.message.bytes`.
///
/// Kafka's `max.message.bytes` bounds the batch as sent, compressed. A producer that closes a
/// batch on its estimated *compressed* size (Java's producer, with `batch.size` raised to
/// 1 MiB for throughput) can send a batch that inflates to several times that limit, so the
/// bound on the inflated size is the larger of `max.message.bytes` and this floor.
/// At the bound the batch is refused with INVALID_RECORD; decoding it costs at most about
/// twice this in memory while the request is handled.
pub const DECOMPRESSED_BATCH_BYTES_MIN: usize = 8 << 20;

/// Bytes of the snappy framing header Kafka's Java client writes (xerial): magic, version,
/// compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// The first 8 bytes of that header.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";

/// Compression codecs of a v2 batch, from bits 0-2 of its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// 0: records stored as they are.
    None,
    /// 1: gzip (RFC 1952), possibly several members.
    Gzip,
    /// 2: snappy, xerial-framed or a raw block.
    Snappy,
    /// 3: LZ4 frame format.
    Lz4,
    /// 4: Zstandard.
    Zstd,
}

impl Compression {
    /// The codec named by a batch's attributes; 5-7 are not codecs (INVALID_RECORD).
    pub fn from_attributes(attributes: i16) -> Result<Compression, BatchError> {
        Ok(match attributes & 0x7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => {
                return Err(BatchError::InvalidRecord(format!(
                    "unknown compression codec {other}"
                )));
            }
        })
    }
}

/// The bound on a batch's records once decompressed, for a topic with `max_message_bytes`.
pub fn decompressed_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.max(DECOMPRESSED_BATCH_BYTES_MIN)
}

/// Checks that `header.records_count` records can fit in `records_bytes` bytes (the
/// decompressed size for a compressed batch). Uses no allocation and cannot overflow.
pub fn check_count(header: &BatchHeader, records_bytes: usize) -> Result<(), BatchError> {
    let count = usize::try_from(header.records_count).map_err(|_| {
        BatchError::InvalidRecord(format!("negative record count {}", header.records_count))
    })?;
    if count > records_bytes / MIN_RECORD_BYTES {
        return Err(BatchError::InvalidRecord(format!(
            "{count} records cannot fit in {records_bytes} bytes \
             (a record takes at least {MIN_RECORD_BYTES})"
        )));
    }
    Ok(())
}

/// Inflates `input` (a batch's records section) with `compression`, refusing output beyond
/// `limit` bytes. The decoder is streaming and stops reading one byte past the bound, so
/// memory stays within about twice `limit` whatever the compressed data claims.
///
/// # Errors
/// - more than `limit` bytes: [`BatchError::InvalidRecord`] (INVALID_RECORD);
/// - a stream the codec cannot decode: [`BatchError::Decompression`] (CORRUPT_MESSAGE).
pub fn decompress(
    compression: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Cow<'_, [u8]>, BatchError> {
    let corrupt = |codec: &str, e: &dyn std::fmt::Display| {
        BatchError::Decompression(format!("{codec} stream does not decode: {e}"))
    };
    let out = match compression {
        Compression::None => {
            if input.len() > limit {
                return Err(over_limit(limit));
            }
            return Ok(Cow::Borrowed(input));
        }
        Compression::Gzip => {
            let decoder = flate2::read::MultiGzDecoder::new(input);
            read_bounded(decoder, limit).map_err(|e| corrupt("gzip", &e))?
        }
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt("zstd", &e))?;
            read_bounded(decoder, limit).map_err(|e| corrupt("zstd", &e))?
        }
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(input).map_err(|e| corrupt("lz4", &e))?;
            read_bounded(decoder, limit).map_err(|e| corrupt("lz4", &e))?
        }
        Compression::Snappy => snappy(input, limit)?,
    };
    if out.len() > limit {
        return Err(over_limit(limit));
    }
    Ok(Cow::Owned(out))
}

fn over_limit(limit: usize) -> BatchError {
    BatchError::InvalidRecord(format!(
        "records decompress to more than the {limit}-byte bound"
    ))
}

/// Reads at most `limit + 1` bytes from `reader`: one more than allowed is enough to know the
/// stream is over the bound.
fn read_bounded(reader: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1) as u64)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Snappy, xerial-framed or raw. Each block's uncompressed length is read from its preamble
/// and checked against what is left of the bound before any memory is reserved for it.
fn snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let corrupt = |e: &dyn std::fmt::Display| {
        BatchError::Decompression(format!("snappy stream does not decode: {e}"))
    };
    let mut out = Vec::new();
    let block = |compressed: &[u8], out: &mut Vec<u8>| -> Result<(), BatchError> {
        let len = snap::raw::decompress_len(compressed).map_err(|e| corrupt(&e))?;
        if len > limit.saturating_sub(out.len()) {
            return Err(over_limit(limit));
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut out[start..])
            .map_err(|e| corrupt(&e))?;
        Ok(())
    };
    if !input.starts_with(XERIAL_MAGIC) {
        block(input, &mut out)?;
        return Ok(out);
    }
    if input.len() < XERIAL_HEADER_LEN {
        return Err(corrupt(&"truncated xerial header"));
    }
    let mut rest = &input[XERIAL_HEADER_LEN..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(corrupt(&"truncated block length"));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len > rest.len() {
            return Err(corrupt(&format!(
                "block of {len} bytes but {} remain",
                rest.len()
            )));
        }
        block(&rest[..len], &mut out)?;
        rest = &rest[len..];
    }
    Ok(out)
}

/// One record, borrowed from the (decompressed) records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Offset minus the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp minus the batch's base timestamp.
    pub timestamp_delta: i64,
    /// The record's timestamp: the batch's baseTimestamp plus `timestamp_delta`, which is
    /// checked (a record whose sum overflows an i64 does not decode: see [`Records`]).
    pub timestamp: i64,
    /// The key, `None` if null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` if null (a tombstone).
    pub value: Option<&'a [u8]>,
}

/// Walks the records of a records section, checking every length before using it. Yields at
/// most `recordsCount` records; an error ends the walk.
///
/// A record is INVALID_RECORD when a length or count runs past the record, when bytes are left
/// over, and when its timestamp, baseTimestamp + timestampDelta, overflows an i64. Kafka's Java
/// broker adds the two in wrapping `long` arithmetic (`DefaultRecord.readFrom`) and so would
/// accept such a record with a meaningless timestamp; Ferry refuses it instead, because no
/// producer can write one honestly (Java's `ProducerRecord` refuses negative timestamps and a
/// batch's baseTimestamp is one of its records' timestamps, so the sum of a real batch is
/// always another record's timestamp) and a wrapped value would misplace the record in
/// ListOffsets by timestamp and in the time index. Only the sum is checked: a timestamp that
/// fits, however far from now, is left to the timestamp policies, as in Kafka.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    /// What is left of the section.
    rest: &'a [u8],
    /// Records still expected.
    remaining: usize,
    /// The batch's baseTimestamp, which every record's timestampDelta is relative to.
    base_timestamp: i64,
    /// Set once an error was returned, so the walk stops.
    failed: bool,
}

impl<'a> Records<'a> {
    /// Walks `section`, expecting `count` records whose timestamps are relative to
    /// `base_timestamp`.
    pub fn new(section: &'a [u8], count: usize, base_timestamp: i64) -> Records<'a> {
        Records {
            rest: section,
            remaining: count,
            base_timestamp,
            failed: false,
        }
    }

    fn next_record(&mut self) -> Result<RecordView<'a>, BatchError> {
        let length = read_varint(&mut self.rest)?;
        let length = usize::try_from(length)
            .ok()
            .filter(|l| *l >= MIN_RECORD_BYTES - 1 && *l <= self.rest.len())
            .ok_or_else(|| {
                invalid(format!(
                    "record length {length} with {} bytes left",
                    self.rest.len()
                ))
            })?;
        let (mut body, rest) = self.rest.split_at(length);
        self.rest = rest;
        let _attributes = take(&mut body, 1)?;
        let timestamp_delta = read_varlong(&mut body)?;
        let timestamp = self
            .base_timestamp
            .checked_add(timestamp_delta)
            .ok_or_else(|| {
                invalid(format!(
                    "timestampDelta {timestamp_delta} overflows baseTimestamp {}",
                    self.base_timestamp
                ))
            })?;
        let offset_delta = read_varint(&mut body)?;
        let key = read_nullable(&mut body, "key")?;
        let value = read_nullable(&mut body, "value")?;
        let headers = read_varint(&mut body)?;
        // No allocation from the count (kafka-protocol's decoder sized a map from it, and a
        // one-record batch claiming 2^31-1 headers aborted the process): the count is checked
        // against the bytes left, each header taking at least MIN_HEADER_BYTES, and each
        // header is then skipped as it is read.
        let headers = usize::try_from(headers)
            .map_err(|_| invalid(format!("negative header count {headers}")))?;
        if headers > body.len() / MIN_HEADER_BYTES {
            return Err(invalid(format!(
                "{headers} headers cannot fit in the {} bytes left of the record \
                 (a header takes at least {MIN_HEADER_BYTES})",
                body.len()
            )));
        }
        for _ in 0..headers {
            let key_len = read_varint(&mut body)?;
            if key_len < 0 {
                return Err(invalid(format!("negative header key length {key_len}")));
            }
            take(&mut body, key_len as usize)?;
            read_nullable(&mut body, "header value")?;
        }
        if !body.is_empty() {
            return Err(invalid(format!(
                "record declares {length} bytes but {} are left over",
                body.len()
            )));
        }
        Ok(RecordView {
            offset_delta,
            timestamp_delta,
            timestamp,
            key,
            value,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(invalid(format!(
                "{} bytes follow the last record",
                self.rest.len()
            ))));
        }
        self.remaining -= 1;
        let record = self.next_record();
        self.failed = record.is_err();
        Some(record)
    }
}

/// A batch whose records were checked: the count fits, they decompress within the bound and
/// every record decodes.
#[derive(Debug, Clone)]
pub struct DecodedBatch<'a> {
    /// The batch's header.
    pub header: BatchHeader,
    /// The records section, decompressed.
    pub section: Cow<'a, [u8]>,
}

impl DecodedBatch<'_> {
    /// The records, walked again (they are known to decode).
    pub fn records(&self) -> Records<'_> {
        Records::new(
            &self.section,
            self.header.records_count.max(0) as usize,
            self.header.base_timestamp,
        )
    }
}

/// Checks and decodes the records of one whole batch (`batch` is exactly the batch, its header
/// and CRC already checked): count against size, bounded decompression, every record walked.
/// With `consecutive`, record `i` must have offsetDelta `i` (what producers write; Kafka's
/// `LogValidator` checks it for client batches).
pub fn decode_batch<'a>(
    batch: &'a [u8],
    header: BatchHeader,
    limit: usize,
    consecutive: bool,
) -> Result<DecodedBatch<'a>, BatchError> {
    let compression = Compression::from_attributes(header.attributes)?;
    let body = batch
        .get(HEADER_LEN..header.size())
        .ok_or(BatchError::Truncated {
            position: 0,
            needed: header.size(),
            available: batch.len(),
        })?;
    let bound = if compression == Compression::None {
        body.len()
    } else {
        limit
    };
    // Before anything is inflated: a count that cannot fit even in the bound is refused.
    check_count(&header, bound)?;
    let section = decompress(compression, body, limit)?;
    check_count(&header, section.len())?;
    let decoded = DecodedBatch { header, section };
    for (i, record) in decoded.records().enumerate() {
        let record = record?;
        if consecutive && i64::from(record.offset_delta) != i as i64 {
            return Err(invalid(format!(
                "record {i} has offsetDelta {}",
                record.offset_delta
            )));
        }
    }
    Ok(decoded)
}

fn invalid(reason: String) -> BatchError {
    BatchError::InvalidRecord(reason)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], BatchError> {
    if n > buf.len() {
        return Err(invalid(format!(
            "a field of {n} bytes runs past its record ({} left)",
            buf.len()
        )));
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

/// A length-prefixed field where -1 means null.
fn read_nullable<'a>(buf: &mut &'a [u8], what: &str) -> Result<Option<&'a [u8]>, BatchError> {
    match read_varint(buf)? {
        -1 => Ok(None),
        n if n < 0 => Err(invalid(format!("{what} length {n}"))),
        n => take(buf, n as usize).map(Some),
    }
}

/// An unsigned LEB128 value of at most `max_bytes` bytes.
fn read_unsigned(buf: &mut &[u8], max_bytes: usize) -> Result<u64, BatchError> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let Some((&byte, rest)) = buf.split_first() else {
            return Err(invalid("a varint runs past its record".to_string()));
        };
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid(format!(
        "a varint is longer than {max_bytes} bytes"
    )))
}

/// A zig-zag varint (int32).
fn read_varint(buf: &mut &[u8]) -> Result<i32, BatchError> {
    let raw = read_unsigned(buf, 5)?;
    let raw = u32::try_from(raw).map_err(|_| invalid("a varint overflows 32 bits".to_string()))?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// A zig-zag varlong (int64).
fn read_varlong(buf: &mut &[u8]) -> Result<i64, BatchError> {
    let raw = read_unsigned(buf, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Walks a buffer of concatenated batches and validates each one for an append from `origin`.
///
/// Every batch must be complete, magic 2, with a matching CRC. From a client, a batch must
/// also fit in `max_message_bytes`, carry at least one record, have `recordsCount ==
/// lastOffsetDelta + 1`, not be a control batch, and have a sequence if it has a producer id;
/// then its records are decoded ([`decode_batch`]): the count must fit the bytes,
/// compressed records must inflate within [`decompressed_limit`], and every record
/// must decode with consecutive offset deltas. So everything a client writes can be decoded
/// later (ListOffsets by timestamp, `__consumer_offsets` replay) within known bounds.
/// From a follower only `lastOffsetDelta >= 0` and `recordsCount >= 0` are required (compacted
/// batches may be sparse or empty, and a leader's old log must not wedge replication; readers
/// check records themselves). An empty buffer is [`BatchError::Empty`].
pub fn validate(
    buf: &[u8],
    origin: Origin,
    max_message_bytes: usize,
) -> Result<Vec<BatchInfo>, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut batches = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        let header = check_batch(&buf[position..]).map_err(|e| at_position(e, position))?;
        check_semantics(&header, origin, max_message_bytes)?;
        if origin == Origin::Client {
            let bytes = &buf[position..position + header.size()];
            let limit = decompressed_limit(max_message_bytes);
            decode_batch(bytes, header, limit, true)?;
        }
        batches.push(BatchInfo { position, header });
        position += header.size();
    }
    Ok(batches)
}

fn at_position(error: BatchError, position: usize) -> BatchError {
    match error {
        BatchError::Truncated {
            needed, available, ..
        } => BatchError::Truncated {
            position,
            needed,
            available,
        },
        other => other,
    }
}

fn check_semantics(h: &BatchHeader, origin: Origin, max: usize) -> Result<(), BatchError> {
    let invalid = |reason: String| Err(BatchError::InvalidRecord(reason));
    if h.last_offset_delta < 0 {
        return invalid(format!("negative lastOffsetDelta {}", h.last_offset_delta));
    }
    if h.records_count < 0 {
        return invalid(format!("negative record count {}", h.records_count));
    }
    if origin == Origin::Replication {
        return Ok(());
    }
    if h.size() > max {
        return Err(BatchError::TooLarge {
            size: h.size(),
            max,
        });
    }
    if h.records_count == 0 {
        return invalid("batch has no records".to_string());
    }
    if i64::from(h.records_count) != i64::from(h.last_offset_delta) + 1 {
        return invalid(format!(
            "inconsistent batch: {} records but lastOffsetDelta {}",
            h.records_count, h.last_offset_delta
        ));
    }
    if h.is_control() {
        return invalid("clients are not allowed to write control records".to_string());
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return invalid(format!(
            "producer {} sent sequence {}",
            h.producer_id, h.base_sequence
        ));
    }
    Ok(())
}

/// Finds, inside one stored batch, the first record at or after `min_offset` whose timestamp
/// is at least `target_ms`, and returns its offset and timestamp.
///
/// With LogAppendTime every record carries the batch's maxTimestamp. Otherwise the records are
/// decoded within `decompressed_limit` bytes ([`decode_batch`]); a batch that does not
/// decode (an old log may hold one written before records were checked) is logged and
/// answered at the batch level, base offset and maxTimestamp, which is what Kafka's
/// index-level answer would be.
pub fn first_record_at_or_after(
    batch: &Bytes,
    target_ms: i64,
    min_offset: Offset,
    decompressed_limit: usize,
) -> Option<(Offset, i64)> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.max_timestamp < target_ms {
        return None;
    }
    let batch_level = Some((header.base_offset.max(min_offset), header.max_timestamp));
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return batch_level;
    }
    let decoded = match decode_batch(batch, header, decompressed_limit, false) {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::error!(%error, base_offset = header.base_offset, "skipping a batch whose records do not decode");
            return batch_level;
        }
    };
    decoded
        .records()
        .map_while(Result::ok)
        .map(|r| {
            (
                header.base_offset.saturating_add(i64::from(r.offset_delta)),
                r.timestamp,
            )
        })
        .find(|(offset, timestamp)| *offset >= min_offset && *timestamp >= target_ms)
        .or(batch_level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{BatchHeader, compute_crc, set_base_offset, set_log_append_time};
    use crate::log::testutil::{BatchSpec, batch, batch_with, raw_batch, raw_record};
    use std::io::Write;

    fn header(buf: &[u8]) -> BatchHeader {
        BatchHeader::parse(buf).unwrap()
    }

    /// Rewrites recordsCount and lastOffsetDelta and fixes the CRC, as an attacker would.
    fn with_count(buf: &[u8], count: i32) -> Vec<u8> {
        let mut out = buf.to_vec();
        out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        out[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn a_batch_from_kafka_protocol_decodes_record_by_record() {
        for compression in [
            kafka_protocol::records::Compression::None,
            kafka_protocol::records::Compression::Gzip,
            kafka_protocol::records::Compression::Snappy,
            kafka_protocol::records::Compression::Lz4,
            kafka_protocol::records::Compression::Zstd,
        ] {
            let spec = BatchSpec {
                records: 5,
                timestamp_ms: 100,
                compression,
                ..Default::default()
            };
            let buf = batch_with(&spec);
            let decoded = decode_batch(&buf, header(&buf), 1 << 20, true)
                .unwrap_or_else(|e| panic!("{compression:?}: {e}"));
            let records: Vec<_> = decoded.records().map(Result::unwrap).collect();
            assert_eq!(records.len(), 5, "{compression:?}");
            assert_eq!(records[3].offset_delta, 3);
            assert_eq!(records[3].timestamp_delta, 3);
            assert!(records[3].value.is_some());
        }
    }

    #[test]
    fn records_with_headers_null_keys_and_tombstones_decode() {
        use bytes::{Bytes, BytesMut};
        use kafka_protocol::indexmap::IndexMap;
        use kafka_protocol::protocol::StrBytes;
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let mut headers = IndexMap::new();
        headers.insert(StrBytes::from_static_str("trace"), Some(Bytes::from("abc")));
        headers.insert(StrBytes::from_static_str("empty"), None);
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32 - 1,
                timestamp: 1_000 + 300 * i,
                key: (i != 1).then(|| Bytes::from(vec![b'k'; 200])),
                value: (i != 2).then(|| Bytes::from(vec![b'v'; 300])),
                headers: headers.clone(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: kafka_protocol::records::Compression::Lz4,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        let decoded = decode_batch(&buf, header(&buf), 1 << 20, true).unwrap();
        let views: Vec<_> = decoded.records().map(Result::unwrap).collect();
        assert_eq!(views.len(), 3);
        assert_eq!(views[1].key, None);
        assert_eq!(views[2].value, None);
        assert_eq!(views[2].timestamp_delta, 600);
        assert_eq!(views[0].key.map(<[u8]>::len), Some(200));
    }

    #[test]
    fn a_count_larger_than_the_bytes_allow_is_refused_before_decoding() {
        let buf = with_count(&batch_with(&BatchSpec::default()), i32::MAX);
        let err = decode_batch(&buf, header(&buf), 1 << 20, true).unwrap_err();
        assert_eq!(err.kafka_code(), 87, "{err}");
        assert!(err.to_string().contains("cannot fit"), "{err}");
    }

    #[test]
    fn a_count_that_fits_but_does_not_match_the_records_is_refused() {
        let spec = BatchSpec {
            records: 3,
            ..Default::default()
        };
        for count in [2, 4] {
            let buf = with_count(&batch_with(&spec), count);
            let err = decode_batch(&buf, header(&buf), 1 << 20, true).unwrap_err();
            assert_eq!(err.kafka_code(), 87, "count {count}: {err}");
        }
    }

    #[test]
    fn gzip_beyond_the_bound_is_refused_and_a_bad_stream_is_corrupt() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&vec![0u8; 4 << 20]).unwrap();
        let bomb = encoder.finish().unwrap();
        let err = decompress(Compression::Gzip, &bomb, 1 << 20).unwrap_err();
        assert_eq!(err.kafka_code(), 87, "{err}");
        assert!(decompress(Compression::Gzip, &bomb, 4 << 20).is_ok());
        let err = decompress(Compression::Gzip, b"not gzip at all", 1 << 20).unwrap_err();
        assert_eq!(err.kafka_code(), 2, "{err}");
    }

    #[test]
    fn every_codec_stops_at_the_bound() {
        let zeros = vec![0u8; 2 << 20];
        let zstd = zstd::encode_all(&zeros[..], 3).unwrap();
        let mut lz4 = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        lz4.write_all(&zeros).unwrap();
        let (lz4, result) = lz4.finish();
        result.unwrap();
        let snappy = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        for (codec, input) in [
            (Compression::Zstd, zstd),
            (Compression::Lz4, lz4),
            (Compression::Snappy, snappy),
        ] {
            let err = decompress(codec, &input, 1 << 20).unwrap_err();
            assert_eq!(err.kafka_code(), 87, "{codec:?}: {err}");
            let out = decompress(codec, &input, 2 << 20).unwrap();
            assert_eq!(out.len(), 2 << 20, "{codec:?}");
        }
    }

    #[test]
    fn random_mutations_of_every_codec_never_panic() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(13);
        for compression in [
            kafka_protocol::records::Compression::None,
            kafka_protocol::records::Compression::Gzip,
            kafka_protocol::records::Compression::Snappy,
            kafka_protocol::records::Compression::Lz4,
            kafka_protocol::records::Compression::Zstd,
        ] {
            let spec = BatchSpec {
                records: 4,
                compression,
                ..Default::default()
            };
            let good = batch_with(&spec).to_vec();
            for _ in 0..500 {
                let mut buf = good.clone();
                for _ in 0..rng.random_range(1..4) {
                    // Mutate only the CRC-covered part past the length, so decoding gets deep.
                    let at = rng.random_range(21..buf.len());
                    buf[at] = rng.random();
                }
                let crc = compute_crc(&buf);
                buf[17..21].copy_from_slice(&crc.to_be_bytes());
                let Ok(h) = BatchHeader::parse(&buf) else {
                    continue;
                };
                if let Ok(decoded) = decode_batch(&buf, h, 1 << 20, false) {
                    assert_eq!(
                        decoded.records().filter(Result::is_ok).count(),
                        h.records_count as usize
                    );
                }
            }
        }
    }

    /// A timestamp of today (ms), for records whose timestamps do not matter.
    const NOW_MS: i64 = 1_700_000_000_000;

    #[test]
    fn a_header_count_its_record_cannot_hold_is_refused_before_any_header_is_read() {
        // fuzz/artifacts/record_batch/header-count-allocation-abort: a consistent batch of one
        // zstd-compressed record that claims a huge header count and carries no header.
        // kafka-protocol's decoder sized a map from the count and the process aborted.
        let record = raw_record(0, 0, i32::MAX, &[]);
        let zstd = zstd::encode_all(&record[..], 3).unwrap();
        for (attributes, section) in [(0, record.clone()), (4, zstd)] {
            let buf = raw_batch(NOW_MS, 1, attributes, &section);
            let err = decode_batch(&buf, header(&buf), 1 << 20, true).unwrap_err();
            assert_eq!(err.kafka_code(), 87, "attributes {attributes}: {err}");
            assert!(
                err.to_string().contains("2147483647 headers cannot fit"),
                "attributes {attributes}: {err}"
            );
        }
        // A count the bytes could hold but whose headers are not all there is refused too;
        // the honest count decodes.
        let one_header = [0x02, b'h', 0x02, b'v']; // key "h", value "v"
        let buf = raw_batch(NOW_MS, 1, 0, &raw_record(0, 0, 2, &one_header));
        let err = decode_batch(&buf, header(&buf), 1 << 20, true).unwrap_err();
        assert_eq!(err.kafka_code(), 87, "{err}");
        let buf = raw_batch(NOW_MS, 1, 0, &raw_record(0, 0, 1, &one_header));
        assert!(decode_batch(&buf, header(&buf), 1 << 20, true).is_ok());
    }

    #[test]
    fn a_timestamp_delta_that_overflows_the_base_timestamp_is_invalid_record() {
        // fuzz/artifacts/record_batch/timestamp-delta-overflow has the first case: its sum
        // is below i64::MIN. kafka-protocol's decoder added them unchecked.
        let overflowing = [
            (-8_430_738_494_654_683_136, -(1i64 << 62)),
            (i64::MIN, -1),
            (i64::MAX, 1),
            (NOW_MS, i64::MAX),
        ];
        for (base, delta) in overflowing {
            let buf = raw_batch(base, 1, 0, &raw_record(delta, 0, 0, &[]));
            let err = decode_batch(&buf, header(&buf), 1 << 20, true).unwrap_err();
            assert_eq!(err.kafka_code(), 87, "{base} + {delta}: {err}");
            assert!(
                err.to_string().contains("overflows baseTimestamp"),
                "{base} + {delta}: {err}"
            );
        }
        // Far from now, but representable: a record like any other.
        for (base, delta, timestamp) in [
            (i64::MAX, 0, i64::MAX),
            (i64::MIN, 0, i64::MIN),
            (i64::MAX, i64::MIN, -1),
            (-1, i64::MIN + 1, i64::MIN),
        ] {
            let buf = raw_batch(base, 1, 0, &raw_record(delta, 0, 0, &[]));
            let decoded = decode_batch(&buf, header(&buf), 1 << 20, true)
                .unwrap_or_else(|e| panic!("{base} + {delta}: {e}"));
            let record = decoded.records().next().unwrap().unwrap();
            assert_eq!(record.timestamp, timestamp, "{base} + {delta}");
        }
    }

    #[test]
    fn varints_are_zigzag_and_bounded() {
        let mut buf: &[u8] = &[0x01];
        assert_eq!(read_varint(&mut buf).unwrap(), -1);
        let mut buf: &[u8] = &[0x02];
        assert_eq!(read_varint(&mut buf).unwrap(), 1);
        let mut buf: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(read_varint(&mut buf).is_err());
        let mut buf: &[u8] = &[0x80];
        assert!(read_varint(&mut buf).is_err());
    }

    /// Decompression bound for the tests.
    const LIMIT: usize = 1 << 20;

    /// `buf` with recordsCount `count` and lastOffsetDelta `count - 1` (consistent with each
    /// other, not with the bytes), CRC fixed: the batch an attacker sends.
    fn with_huge_count(buf: &[u8], count: i32) -> Vec<u8> {
        let mut out = buf.to_vec();
        out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        out[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn a_count_the_bytes_cannot_hold_is_refused_from_clients() {
        let buf = with_huge_count(&batch(2, 10), i32::MAX);
        let err = validate(&buf, Origin::Client, 1 << 20).unwrap_err();
        assert_eq!(err.kafka_code(), 87, "{err}");
        // Replication copies a leader's log as it is; readers check records themselves.
        assert!(validate(&buf, Origin::Replication, usize::MAX).is_ok());
    }

    #[test]
    fn a_timestamp_lookup_over_an_undecodable_batch_answers_at_the_batch_level() {
        let mut buf = with_huge_count(&batch(2, 100), i32::MAX);
        set_base_offset(&mut buf, 7);
        let bytes = Bytes::from(buf);
        assert_eq!(
            first_record_at_or_after(&bytes, 100, 0, LIMIT),
            Some((7, 101))
        );
    }

    #[test]
    fn a_batch_whose_record_timestamp_overflows_is_refused_from_clients() {
        // The essence of fuzz/artifacts/record_batch/timestamp-delta-overflow: one record whose
        // baseTimestamp + timestampDelta is below i64::MIN (see `records::Records`).
        let base = -8_430_738_494_654_683_136;
        let buf = raw_batch(base, 1, 0, &raw_record(-(1i64 << 62), 0, 0, &[]));
        let err = validate(&buf, Origin::Client, 1 << 20).unwrap_err();
        assert_eq!(err.kafka_code(), 87, "{err}");
        // A follower copies it (a leader's old log may hold one); a timestamp lookup answers
        // at the batch level, as for any batch that does not decode.
        assert!(validate(&buf, Origin::Replication, usize::MAX).is_ok());
        let bytes = Bytes::from(buf);
        assert_eq!(
            first_record_at_or_after(&bytes, i64::MIN, 0, LIMIT),
            Some((0, base))
        );
    }

    #[test]
    fn validate_walks_concatenated_batches() {
        let mut buf = batch(2, 10).to_vec();
        let second = buf.len();
        buf.extend_from_slice(&batch(5, 20));
        let infos = validate(&buf, Origin::Client, 1 << 20).unwrap();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[1].position, second);
        assert_eq!(infos[1].header.records_count, 5);
    }

    #[test]
    fn validate_refuses_bad_input() {
        let good = batch(2, 10);
        let cases: Vec<(Vec<u8>, i16)> = vec![
            (Vec::new(), 87),
            (good[..good.len() - 1].to_vec(), 2),
            (good[..10].to_vec(), 2),
            (good[..30].to_vec(), 2),
            (flip(&good, 70), 2),
            (flip(&good, 22), 2),
            (with_magic(&good, 1), 87),
            (with_magic(&good, 3), 2),
        ];
        for (i, (buf, code)) in cases.iter().enumerate() {
            let err = validate(buf, Origin::Client, 1 << 20).unwrap_err();
            assert_eq!(err.kafka_code(), *code, "case {i}: {err}");
        }
    }

    #[test]
    fn bad_length_is_corrupt() {
        let mut buf = batch(1, 0).to_vec();
        buf[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(
            validate(&buf, Origin::Client, 1 << 20),
            Err(BatchError::BadLength { length: 10 })
        );
        buf[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            validate(&buf, Origin::Client, 1 << 20),
            Err(BatchError::BadLength { .. })
        ));
    }

    #[test]
    fn too_large_only_for_clients() {
        let buf = batch(10, 0);
        let err = validate(&buf, Origin::Client, buf.len() - 1).unwrap_err();
        assert_eq!(
            err,
            BatchError::TooLarge {
                size: buf.len(),
                max: buf.len() - 1
            }
        );
        assert_eq!(err.kafka_code(), 10);
        assert!(validate(&buf, Origin::Client, buf.len()).is_ok());
        assert!(validate(&buf, Origin::Replication, 1).is_ok());
    }

    #[test]
    fn inconsistent_count_is_invalid_record_from_clients_only() {
        let mut buf = batch(3, 0).to_vec();
        buf[57..61].copy_from_slice(&2i32.to_be_bytes());
        let crc = compute_crc(&buf);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = validate(&buf, Origin::Client, 1 << 20).unwrap_err();
        assert!(matches!(err, BatchError::InvalidRecord(_)), "{err}");
        assert!(validate(&buf, Origin::Replication, 1 << 20).is_ok());
    }

    #[test]
    fn control_batches_are_refused_from_clients() {
        let spec = BatchSpec {
            control: true,
            ..Default::default()
        };
        let buf = batch_with(&spec);
        let err = validate(&buf, Origin::Client, 1 << 20).unwrap_err();
        assert_eq!(err.kafka_code(), 87);
        assert!(validate(&buf, Origin::Replication, 1 << 20).is_ok());
    }

    #[test]
    fn first_record_at_or_after_looks_inside_the_batch() {
        let mut buf = batch(5, 100).to_vec(); // timestamps 100..=104
        set_base_offset(&mut buf, 50);
        let bytes = Bytes::from(buf);
        assert_eq!(
            first_record_at_or_after(&bytes, 102, 0, LIMIT),
            Some((52, 102))
        );
        assert_eq!(
            first_record_at_or_after(&bytes, 0, 0, LIMIT),
            Some((50, 100))
        );
        assert_eq!(
            first_record_at_or_after(&bytes, 0, 53, LIMIT),
            Some((53, 103))
        );
        assert_eq!(first_record_at_or_after(&bytes, 105, 0, LIMIT), None);
        let mut appended = bytes.to_vec();
        set_log_append_time(&mut appended, 9_000);
        let appended = Bytes::from(appended);
        assert_eq!(
            first_record_at_or_after(&appended, 8_000, 0, LIMIT),
            Some((50, 9_000))
        );
    }

    fn flip(buf: &[u8], at: usize) -> Vec<u8> {
        let mut out = buf.to_vec();
        out[at] ^= 0x40;
        out
    }

    fn with_magic(buf: &[u8], magic: i8) -> Vec<u8> {
        let mut out = buf.to_vec();
        out[16] = magic as u8;
        out
    }
}
