//! The group coordinator's records in `__consumer_offsets`: read back from the log when a
//! broker loads an offsets partition (clients could produce to that topic until issue 13).

use ferry_data_plane::group::GroupOptions;
use ferry_data_plane::group::coordinator::Coordinator;
use ferry_data_plane::group::records::OffsetsRecord;

/// A fixed clock (milliseconds) for replay and the tick after it.
pub const NOW_MS: i64 = 1_700_000_000_000;

/// `data` is a sequence of records, each `key_len:u16 key value_len:i32 value` (big endian;
/// a negative `value_len` is a tombstone, no value). Each record is decoded as the loader does
/// and replayed into one coordinator, which then ticks once. Undecodable records are skipped
/// (the loader logs and skips them); a panic is a finding.
pub fn group_record(mut data: &[u8]) {
    let mut coordinator = Coordinator::new(GroupOptions::default());
    for _ in 0..crate::LINES_MAX {
        let Some((key, value, rest)) = split_record(data) else {
            break;
        };
        data = rest;
        if let Ok(record) = OffsetsRecord::decode(key, value) {
            coordinator.replay(record, NOW_MS);
        }
    }
    let _output = coordinator.tick(NOW_MS);
}

/// One record's key and value (`None`: a tombstone), and the bytes after it.
type Split<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);

/// Splits one `key_len key value_len value` record off the front of `data`.
fn split_record(data: &[u8]) -> Option<Split<'_>> {
    let (len, data) = data.split_first_chunk::<2>()?;
    let (key, data) = data.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let (len, data) = data.split_first_chunk::<4>()?;
    let Ok(len) = usize::try_from(i32::from_be_bytes(*len)) else {
        return Some((key, None, data));
    };
    let (value, data) = data.split_at_checked(len)?;
    Some((key, Some(value), data))
}

/// Encodes records in the format [`group_record`] reads (for the seeds).
pub fn encode_records(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        out.extend_from_slice(&u16::try_from(key.len()).expect("short key").to_be_bytes());
        out.extend_from_slice(key);
        match value {
            Some(value) => {
                let len = i32::try_from(value.len()).expect("short value");
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(value);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out
}
