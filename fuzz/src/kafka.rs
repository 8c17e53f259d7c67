//! The Kafka listener's decoders: request frames, and the record batches a Produce carries
//! (through produce validation and every later reader of a stored batch).

use bytes::{Bytes, BytesMut};
use ferry_data_plane::group::GroupOptions;
use ferry_data_plane::group::coordinator::Coordinator;
use ferry_data_plane::group::records::OffsetsRecord;
use ferry_data_plane::log::batch::{self, Origin};
use ferry_data_plane::log::records as log_records;
use ferry_data_plane::protocol::frame::{DEFAULT_MAX_FRAME_BYTES, FrameDecoder};
use ferry_data_plane::protocol::request;

/// `max.message.bytes` as the broker applies it to a produced batch (Kafka's default).
pub const MAX_MESSAGE_BYTES: usize = 1_048_588;

/// One request frame's payload (without its size prefix) through the broker's decoder: the
/// version policy, the header, the guard's walk over every length in the body, then the
/// body's codec. Refusals are errors; nothing may panic or allocate beyond the input's size.
///
/// The same bytes also go through the frame decoder as a stream (size prefixes included), as a
/// connection's read buffer would, and each complete frame is decoded too.
pub fn kafka_request(data: &[u8]) {
    let _ = request::decode(Bytes::copy_from_slice(data));

    let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
    let mut stream = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut stream) {
        let _ = request::decode(frame);
    }
}

/// The records of one Produce partition, through everything the broker runs on records:
///
/// 1. Produce: [`log_records::validate`] of a client's batches (`Origin::Client`): the
///    header, the count against the bytes, bounded decompression, every record walked.
/// 2. What readers run later on every batch of a log, which may also hold batches that passed
///    only a follower's structural checks (`Origin::Replication`) or an older broker's:
///    [`log_records::first_record_at_or_after`] (ListOffsets by timestamp), and
///    [`records::decode_batch`] with each record's key and value through
///    [`OffsetsRecord::decode`] and [`Coordinator::replay`] (loading `__consumer_offsets`).
///
/// Besides "nothing panics, aborts or allocates beyond the input's bounds", it checks that a
/// batch the produce validation accepts decodes again to exactly its recordsCount records, and
/// that a timestamp lookup in it answers an offset inside the batch. The input's CRCs are
/// fixed first (an attacker computes them too), so that the fuzzer does not spend its time
/// guessing CRC-32C values.
pub fn record_batch(data: &[u8]) {
    let mut records = data.to_vec();
    fix_crcs(&mut records);
    let limit = log_records::decompressed_limit(MAX_MESSAGE_BYTES);
    let accepted = log_records::validate(&records, Origin::Client, MAX_MESSAGE_BYTES).is_ok();
    let Ok(stored) = log_records::validate(&records, Origin::Replication, usize::MAX) else {
        assert!(!accepted, "produce accepted what replication refuses");
        return;
    };
    let mut coordinator = Coordinator::new(GroupOptions::default());
    for info in stored {
        let header = info.header;
        let bytes = Bytes::copy_from_slice(&records[info.position..info.position + header.size()]);
        for target_ms in [i64::MIN, header.base_timestamp, header.max_timestamp] {
            let found =
                log_records::first_record_at_or_after(&bytes, target_ms, header.base_offset, limit);
            if let (true, Some((offset, _))) = (accepted, found) {
                assert!(
                    (header.base_offset..=header.last_offset()).contains(&offset),
                    "offset {offset} outside the batch {}..={}",
                    header.base_offset,
                    header.last_offset()
                );
            }
        }
        let decoded = match log_records::decode_batch(&bytes, header, limit, false) {
            Ok(decoded) => decoded,
            Err(e) => {
                assert!(!accepted, "an accepted batch does not decode again: {e}");
                continue;
            }
        };
        let mut count = 0usize;
        for record in decoded.records() {
            let record = record.expect("decode_batch walked every record");
            count += 1;
            let Some(key) = record.key else {
                continue;
            };
            if let Ok(offsets_record) = OffsetsRecord::decode(key, record.value) {
                coordinator.replay(offsets_record, crate::group::NOW_MS);
            }
        }
        assert_eq!(Ok(count), usize::try_from(header.records_count));
    }
    let _output = coordinator.tick(crate::group::NOW_MS);
}

/// Writes the correct CRC-32C into every complete v2 batch header of `records`, walking the
/// batches by their `batchLength` as the validator does.
pub fn fix_crcs(records: &mut [u8]) {
    const CRC_AT: usize = 17;
    let mut position = 0;
    while records.len() - position >= batch::HEADER_LEN {
        let length_at = position + 8;
        let length = i32::from_be_bytes(
            records[length_at..length_at + 4]
                .try_into()
                .expect("4 bytes"),
        );
        let Ok(length) = usize::try_from(length) else {
            return;
        };
        let size = batch::LOG_OVERHEAD + length;
        if size < batch::HEADER_LEN || size > records.len() - position {
            return;
        }
        let this = &mut records[position..position + size];
        let crc = batch::compute_crc(this);
        this[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        position += size;
    }
}
