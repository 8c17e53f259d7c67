//! The Kafka listener's decoders: request frames, and the record batches a Produce carries.

use bytes::{Bytes, BytesMut};
use ferry_data_plane::log::batch::{self, Origin};
use ferry_data_plane::protocol::frame::{DEFAULT_MAX_FRAME_BYTES, FrameDecoder};
use ferry_data_plane::protocol::request;
use kafka_protocol::records::RecordBatchDecoder;

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

/// The records of one Produce partition through the broker's validation of a client's
/// batches, then, for every batch it accepts, through the record decoder the broker runs on
/// stored batches later (ListOffsets by timestamp, loading `__consumer_offsets`).
///
/// A batch the validator accepts must decode within memory bounded by its size: that is the
/// property this target checks. The input's CRCs are fixed first (an attacker computes them
/// too), so that the fuzzer does not spend its time guessing CRC-32C values.
pub fn record_batch(data: &[u8]) {
    let mut records = data.to_vec();
    fix_crcs(&mut records);
    let Ok(batches) = batch::validate(&records, Origin::Client, MAX_MESSAGE_BYTES) else {
        return;
    };
    for info in batches {
        let end = info.position + info.header.size();
        let mut stored = Bytes::copy_from_slice(&records[info.position..end]);
        let _ = RecordBatchDecoder::decode_all(&mut stored);
    }
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
