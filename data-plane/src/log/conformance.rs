//! Semantics every [`PartitionLog`] must have, run against both [`MemoryLog`] and
//! [`FileLog`], plus a seeded randomized test against a simple model.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::batch::{self, BatchHeader};
use super::config::{LogConfig, MessageTimestampType};
use super::testutil::{batch, concat};
use super::{Error, FileLog, MemoryLog, PartitionLog};

/// A log under test and, for a file log, the directory that must outlive it (dropped after
/// the log, by tuple field order).
type Made = (Box<dyn PartitionLog>, Option<tempfile::TempDir>);

fn memory(config: LogConfig) -> Made {
    (Box::new(MemoryLog::new(config)), None)
}

fn file(config: LogConfig) -> Made {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(&dir.path().join("topic-0"), config, 0).unwrap();
    (Box::new(log), Some(dir))
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory_log {
            $(#[test] fn $name() { super::$name(super::memory); })*
        }
        mod file_log {
            $(#[test] fn $name() { super::$name(super::file); })*
        }
    };
}

conformance!(
    round_trip_assigns_offsets,
    read_from_inside_a_batch,
    max_bytes_and_min_one_batch,
    max_offset_bounds_reads,
    out_of_range_reads,
    invalid_appends_write_nothing,
    rolls_by_size,
    rolls_by_age,
    retention_by_time,
    retention_by_bytes,
    retention_respects_high_watermark,
    offsets_for_timestamps,
    truncation,
    leader_epoch_cache,
    follower_appends,
    advance_log_start,
    restart_past_the_end,
    log_append_time,
    config_changes_apply,
);

fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

fn append(log: &mut dyn PartitionLog, records: usize, ts: i64) -> (i64, i64) {
    let info = log
        .append_as_leader(BytesMut::from(&batch(records, ts)[..]), 0, ts)
        .unwrap();
    (info.first_offset, info.last_offset)
}

fn read_all(log: &mut dyn PartitionLog, offset: i64) -> Bytes {
    let end = log.log_end_offset();
    log.read(offset, usize::MAX, end, true).unwrap().records
}

/// (base offset, record offsets) of each batch in `bytes`.
fn offsets(bytes: &Bytes) -> Vec<(i64, Vec<i64>)> {
    let mut buf = bytes.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
    let mut out = Vec::new();
    let mut position = 0;
    for set in sets {
        let header = BatchHeader::parse(&bytes[position..]).unwrap();
        position += header.size();
        out.push((
            header.base_offset,
            set.records.iter().map(|r| r.offset).collect(),
        ));
    }
    out
}

fn round_trip_assigns_offsets(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(append(&mut *log, 3, 100), (0, 2));
    let two = concat(&[batch(2, 200), batch(4, 300)]);
    let info = log.append_as_leader(two, 5, 400).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (3, 8, 6)
    );
    assert_eq!(
        (
            info.log_append_time,
            info.max_timestamp,
            info.log_start_offset
        ),
        (-1, 303, 0)
    );
    assert_eq!(log.log_end_offset(), 9);
    let bytes = read_all(&mut *log, 0);
    assert_eq!(
        offsets(&bytes),
        vec![(0, vec![0, 1, 2]), (3, vec![3, 4]), (5, vec![5, 6, 7, 8])]
    );
    let mut position = 0;
    while position < bytes.len() {
        let h = batch::check_batch(&bytes[position..]).unwrap();
        assert_eq!(
            h.partition_leader_epoch,
            if h.base_offset == 0 { 0 } else { 5 }
        );
        position += h.size();
    }
    let mut buf = bytes.clone();
    let records = RecordBatchDecoder::decode_all(&mut buf).unwrap();
    assert_eq!(
        records[0].records[1].value.as_deref(),
        Some(&b"vvvvvvvv"[..])
    );
    assert_eq!(records[0].records[1].key.as_deref(), Some(&b"key-1"[..]));
}

fn read_from_inside_a_batch(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(config());
    for i in 0..20 {
        append(&mut *log, 3, i * 10);
    }
    let r = log.read(31, usize::MAX, 60, true).unwrap();
    assert_eq!(r.first_offset, 30);
    assert_eq!(r.next_offset, 60);
    assert_eq!(offsets(&r.records).first().map(|b| b.0), Some(30));
    assert_eq!(offsets(&r.records).len(), 10);
    assert_eq!((r.log_start_offset, r.log_end_offset), (0, 60));
}

fn max_bytes_and_min_one_batch(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(config());
    let size = batch(2, 0).len();
    for _ in 0..4 {
        append(&mut *log, 2, 0);
    }
    let r = log.read(0, size * 2 + size / 2, 8, false).unwrap();
    assert_eq!((r.records.len(), r.next_offset), (size * 2, 4));
    let r = log.read(2, 10, 8, true).unwrap();
    assert_eq!(
        (r.records.len(), r.first_offset, r.next_offset),
        (size, 2, 4)
    );
    let r = log.read(2, 10, 8, false).unwrap();
    assert!(r.records.is_empty());
    assert_eq!((r.first_offset, r.next_offset), (2, 2));
    let r = log.read(0, size * 4, 8, false).unwrap();
    assert_eq!(r.records.len(), size * 4);
}

fn max_offset_bounds_reads(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(config());
    append(&mut *log, 3, 0);
    append(&mut *log, 3, 0);
    assert_eq!(
        offsets(&log.read(0, usize::MAX, 3, true).unwrap().records).len(),
        1
    );
    assert_eq!(
        offsets(&log.read(0, usize::MAX, 5, true).unwrap().records).len(),
        1
    );
    assert!(log.read(0, usize::MAX, 0, true).unwrap().records.is_empty());
    assert!(log.read(3, usize::MAX, 3, true).unwrap().records.is_empty());
    assert_eq!(
        offsets(&log.read(1, usize::MAX, 6, true).unwrap().records).len(),
        2
    );
}

fn out_of_range_reads(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(config());
    append(&mut *log, 3, 0);
    for offset in [-1, 4, 100] {
        let err = log.read(offset, 100, 3, true).unwrap_err();
        assert!(
            matches!(err, Error::OffsetOutOfRange { requested, log_start: 0, log_end: 3 }
            if requested == offset),
            "{err}"
        );
        assert_eq!(err.kafka_code(), 1);
    }
    let r = log.read(3, 100, 3, true).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.next_offset, 3);
}

fn invalid_appends_write_nothing(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(LogConfig {
        max_message_bytes: 200,
        ..config()
    });
    append(&mut *log, 1, 0);
    let size = log.size_bytes();
    let mut corrupt = batch(2, 0).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let mut old_magic = batch(2, 0).to_vec();
    old_magic[16] = 1;
    let cases: Vec<(BytesMut, i16)> = vec![
        (concat(&[batch(2, 0), Bytes::from(corrupt)]), 2),
        (BytesMut::from(&batch(2, 0)[..30]), 2),
        (concat(&[batch(2, 0), batch(30, 0)]), 10),
        (BytesMut::from(&old_magic[..]), 87),
        (BytesMut::new(), 87),
    ];
    for (buf, code) in cases {
        let err = log.append_as_leader(buf, 0, 0).unwrap_err();
        assert!(matches!(err, Error::Batch(_)), "{err}");
        assert_eq!(err.kafka_code(), code, "{err}");
        assert_eq!((log.log_end_offset(), log.size_bytes()), (1, size));
    }
    assert_eq!(append(&mut *log, 1, 0), (1, 1));
}

fn rolls_by_size(make: fn(LogConfig) -> Made) {
    let size = batch(2, 0).len() as u64;
    let (mut log, _dir) = make(LogConfig {
        segment_bytes: size * 2,
        ..config()
    });
    for _ in 0..5 {
        append(&mut *log, 2, 0);
    }
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.size_bytes(), size * 5);
    let all = read_all(&mut *log, 0);
    assert_eq!(
        offsets(&all).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![0, 2, 4, 6, 8]
    );
    assert_eq!(offsets(&read_all(&mut *log, 5)).len(), 3);
    // A batch larger than segment.bytes still goes in, alone in its segment.
    append(&mut *log, 20, 0);
    assert_eq!(log.segment_count(), 4);
    append(&mut *log, 1, 0);
    assert_eq!(log.segment_count(), 5);
}

fn rolls_by_age(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(LogConfig {
        segment_ms: 1_000,
        ..config()
    });
    assert!(
        !log.maybe_roll(10_000).unwrap(),
        "an empty segment never rolls"
    );
    log.append_as_leader(BytesMut::from(&batch(1, 0)[..]), 0, 10_000)
        .unwrap();
    log.append_as_leader(BytesMut::from(&batch(1, 0)[..]), 0, 10_500)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!(!log.maybe_roll(10_999).unwrap());
    log.append_as_leader(BytesMut::from(&batch(1, 0)[..]), 0, 11_000)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    assert!(!log.maybe_roll(11_500).unwrap());
    assert!(log.maybe_roll(12_000).unwrap());
    assert_eq!(log.segment_count(), 3);
    assert!(!log.maybe_roll(50_000).unwrap());
    assert_eq!(offsets(&read_all(&mut *log, 0)).len(), 3);
}

fn small_segments(size_batches: u64) -> LogConfig {
    let size = batch(2, 0).len() as u64;
    LogConfig {
        segment_bytes: size * size_batches,
        ..config()
    }
}

fn retention_by_time(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(LogConfig {
        retention_ms: 1_000,
        ..small_segments(2)
    });
    for ts in [0, 100, 2_000, 2_100, 5_000] {
        append(&mut *log, 2, ts); // segments: [0,100] [2000,2100] [5000]
    }
    assert_eq!(log.segment_count(), 3);
    let outcome = log.enforce_retention(3_000, 10).unwrap();
    assert_eq!(
        (outcome.deleted_by_time, outcome.segments_deleted()),
        (1, 1)
    );
    assert_eq!((outcome.log_start_offset, log.log_start_offset()), (4, 4));
    assert_eq!(outcome.bytes_deleted, batch(2, 0).len() as u64 * 2);
    assert!(matches!(
        log.read(3, 100, 10, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(offsets(&read_all(&mut *log, 4))[0].0, 4);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((4, 2_000)));
    // Everything expired: the active segment is rolled, then all old ones go.
    let outcome = log.enforce_retention(100_000, 10).unwrap();
    assert_eq!(outcome.deleted_by_time, 2);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (10, 10, 1)
    );
    assert_eq!(log.size_bytes(), 0);
    assert!(read_all(&mut *log, 10).is_empty());
    assert_eq!(append(&mut *log, 1, 100_000), (10, 10));
    let infinite = LogConfig {
        retention_ms: -1,
        ..log.config().clone()
    };
    log.set_config(infinite);
    assert_eq!(
        log.enforce_retention(i64::MAX, 11)
            .unwrap()
            .segments_deleted(),
        0
    );
}

fn retention_by_bytes(make: fn(LogConfig) -> Made) {
    let size = batch(2, 0).len() as i64;
    let (mut log, _dir) = make(LogConfig {
        retention_bytes: size * 3,
        ..small_segments(2)
    });
    for _ in 0..7 {
        append(&mut *log, 2, 0); // four segments of 2, 2, 2, 1 batches
    }
    let outcome = log.enforce_retention(0, 14).unwrap();
    assert_eq!((outcome.deleted_by_size, outcome.deleted_by_time), (2, 0));
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(log.size_bytes() as i64, size * 3);
    assert_eq!(log.enforce_retention(0, 14).unwrap().segments_deleted(), 0);
}

fn retention_respects_high_watermark(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(LogConfig {
        retention_ms: 1,
        ..small_segments(1)
    });
    for _ in 0..3 {
        append(&mut *log, 2, 0);
    }
    assert_eq!(
        log.enforce_retention(10_000, 3).unwrap().segments_deleted(),
        1
    );
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(
        log.enforce_retention(10_000, 6).unwrap().segments_deleted(),
        2
    );
    assert_eq!((log.log_start_offset(), log.segment_count()), (6, 1));
}

fn offsets_for_timestamps(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(LogConfig {
        index_interval_bytes: 0,
        ..small_segments(2)
    });
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), None);
    for ts in [100, 200, 150, 300, 250] {
        append(&mut *log, 5, ts); // offsets 0-4 100.., 5-9 200.., 10-14 150.., ...
    }
    let cases = [
        (0, Some((0, 100))),
        (102, Some((2, 102))),
        (104, Some((4, 104))),
        (105, Some((5, 200))),
        (160, Some((5, 200))),
        (204, Some((9, 204))),
        (205, Some((15, 300))),
        (251, Some((15, 300))),
        (304, Some((19, 304))),
        (305, None),
    ];
    for (ts, want) in cases {
        assert_eq!(
            log.offset_for_timestamp(ts).unwrap(),
            want,
            "timestamp {ts}"
        );
    }
    assert_eq!(log.max_timestamp().unwrap(), Some((19, 304)));
    log.advance_log_start(17).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((17, 302)));
    // Offset order decides, not timestamp order: 17 (302) comes before 24 (254).
    assert_eq!(log.offset_for_timestamp(254).unwrap(), Some((17, 302)));
    assert_eq!(log.offset_for_timestamp(303).unwrap(), Some((18, 303)));
}

fn truncation(make: fn(LogConfig) -> Made) {
    let segment_bytes = batch(3, 0).len() as u64 * 2;
    let (mut log, _dir) = make(LogConfig {
        segment_bytes,
        ..config()
    });
    for _ in 0..5 {
        append(&mut *log, 3, 0); // batches start at 0 3 6 9 12; segments [0,3] [6,9] [12]
    }
    log.truncate_to(100).unwrap();
    assert_eq!(log.log_end_offset(), 15);
    log.truncate_to(10).unwrap(); // inside batch 9..11: the whole batch goes
    assert_eq!((log.log_end_offset(), log.segment_count()), (9, 2));
    assert_eq!(offsets(&read_all(&mut *log, 0)).len(), 3);
    assert_eq!(append(&mut *log, 2, 0), (9, 10));
    log.truncate_to(6).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(append(&mut *log, 1, 0), (6, 6));
    assert_eq!(offsets(&read_all(&mut *log, 0)).len(), 3);
    log.truncate_to(0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(append(&mut *log, 1, 0), (0, 0));
    // Below the log start: the log restarts empty at the given offset.
    for _ in 0..4 {
        append(&mut *log, 3, 0);
    }
    log.advance_log_start(7).unwrap();
    log.truncate_to(5).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.size_bytes()
        ),
        (5, 5, 0)
    );
    assert_eq!(append(&mut *log, 1, 0), (5, 5));
}

fn leader_epoch_cache(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(small_segments(2));
    assert_eq!(log.end_offset_for_epoch(0), None);
    for (epoch, records) in [(1, 2), (1, 2), (3, 2), (4, 1), (4, 1)] {
        log.append_as_leader(BytesMut::from(&batch(records, 0)[..]), epoch, 0)
            .unwrap();
    }
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 0)));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(2), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 6)));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 8)));
    assert_eq!(log.end_offset_for_epoch(5), None);
    log.truncate_to(6).unwrap();
    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 6)));
    log.advance_log_start(5).unwrap();
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 5)));
}

fn follower_appends(make: fn(LogConfig) -> Made) {
    let (mut leader, _dir1) = make(config());
    let (mut follower, _dir2) = make(config());
    for (epoch, records) in [(2, 3), (2, 1), (5, 2)] {
        leader
            .append_as_leader(BytesMut::from(&batch(records, 0)[..]), epoch, 0)
            .unwrap();
    }
    let fetched = leader.read(0, usize::MAX, 4, true).unwrap();
    let info = follower
        .append_as_follower(BytesMut::from(&fetched.records[..]), 0)
        .unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 3, 4)
    );
    let rest = leader.read(4, usize::MAX, 6, true).unwrap().records;
    let info = follower
        .append_as_follower(BytesMut::from(&rest[..]), 0)
        .unwrap();
    assert_eq!((info.first_offset, info.last_offset), (4, 5));
    assert_eq!(read_all(&mut *follower, 0), read_all(&mut *leader, 0));
    assert_eq!(follower.end_offset_for_epoch(2), Some((2, 4)));
    assert_eq!(follower.latest_epoch(), Some(5));
    let again = follower
        .append_as_follower(BytesMut::from(&rest[..]), 0)
        .unwrap_err();
    assert!(
        matches!(
            again,
            Error::NonContiguous {
                expected: 6,
                got: 4
            }
        ),
        "{again}"
    );
    let empty = follower.append_as_follower(BytesMut::new(), 0).unwrap();
    assert_eq!((empty.first_offset, empty.record_count), (6, 0));
}

fn advance_log_start(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(small_segments(2));
    for _ in 0..5 {
        append(&mut *log, 2, 0); // segments [0,2] [4,6] [8]
    }
    log.advance_log_start(5).unwrap();
    assert_eq!((log.log_start_offset(), log.segment_count()), (5, 2));
    assert!(matches!(
        log.read(4, 100, 10, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
    let r = log.read(5, usize::MAX, 10, true).unwrap();
    assert_eq!(
        r.first_offset, 4,
        "the batch containing the log start is served whole"
    );
    log.advance_log_start(3).unwrap();
    assert_eq!(log.log_start_offset(), 5);
    assert!(log.advance_log_start(11).is_err());
    log.advance_log_start(10).unwrap();
    assert_eq!((log.log_start_offset(), log.segment_count()), (10, 1));
    assert_eq!(append(&mut *log, 1, 0), (10, 10));
}

/// A follower behind its leader's log start starts over there (Kafka's truncateFullyAndStartAt).
fn restart_past_the_end(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(small_segments(2));
    for _ in 0..3 {
        append(&mut *log, 2, 0); // offsets 0..6
    }
    log.restart_at(20).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (20, 20, 1)
    );
    assert_eq!(log.latest_epoch(), None, "the epoch cache starts over too");
    assert!(matches!(
        log.read(4, 100, 30, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
    let copied = batch(2, 0);
    let mut copied = BytesMut::from(&copied[..]);
    crate::log::batch::set_base_offset(&mut copied, 20);
    log.append_as_follower(copied, 0).unwrap();
    assert_eq!(log.log_end_offset(), 22);
}

fn log_append_time(make: fn(LogConfig) -> Made) {
    let c = LogConfig {
        message_timestamp_type: MessageTimestampType::LogAppendTime,
        ..config()
    };
    let (mut log, _dir) = make(c);
    let info = log
        .append_as_leader(BytesMut::from(&batch(3, 5)[..]), 0, 77_000)
        .unwrap();
    assert_eq!((info.log_append_time, info.max_timestamp), (77_000, 77_000));
    let bytes = read_all(&mut *log, 0);
    let h = batch::check_batch(&bytes).unwrap();
    assert_eq!(h.max_timestamp, 77_000);
    assert_eq!(h.timestamp_type(), batch::TimestampType::LogAppendTime);
    assert_eq!(log.offset_for_timestamp(70_000).unwrap(), Some((0, 77_000)));
}

fn config_changes_apply(make: fn(LogConfig) -> Made) {
    let (mut log, _dir) = make(config());
    append(&mut *log, 10, 0);
    let strict = LogConfig {
        max_message_bytes: 100,
        ..config()
    };
    log.set_config(strict.clone());
    assert_eq!(log.config(), &strict);
    let err = log
        .append_as_leader(BytesMut::from(&batch(10, 0)[..]), 0, 0)
        .unwrap_err();
    assert_eq!(err.kafka_code(), 10);
}

/// A model of the log: the batches it should hold, as stored.
#[derive(Default)]
struct Model {
    /// (base offset, next offset, stored bytes).
    batches: Vec<(i64, i64, Bytes)>,
    log_start: i64,
}

impl Model {
    fn end(&self, fallback: i64) -> i64 {
        self.batches.last().map_or(fallback, |b| b.1)
    }

    fn expected_read(&self, offset: i64) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, next, bytes) in &self.batches {
            if *next > offset {
                out.extend_from_slice(bytes);
            }
        }
        out
    }
}

/// A way to reopen the log under test (file logs only).
type Reopen<'a> = Option<&'a mut dyn FnMut() -> Box<dyn PartitionLog>>;

fn random_ops(seed: u64, mut log: Box<dyn PartitionLog>, mut reopen: Reopen<'_>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut now = 1_000_000;
    let mut epoch = 0;
    for step in 0..300 {
        now += rng.random_range(0..200);
        match rng.random_range(0..100) {
            0..=59 => {
                let records = rng.random_range(1..6);
                let info = log
                    .append_as_leader(BytesMut::from(&batch(records, now)[..]), epoch, now)
                    .unwrap();
                let stored = log.read(info.first_offset, usize::MAX, info.last_offset + 1, true);
                let stored = stored.unwrap().records;
                model
                    .batches
                    .push((info.first_offset, info.last_offset + 1, stored));
            }
            60..=64 => epoch += 1,
            65..=69 => {
                log.maybe_roll(now).unwrap();
            }
            70..=74 if reopen.is_some() => {
                if rng.random_bool(0.5) {
                    // A crash: nothing flushed, no clean-shutdown marker.
                    std::mem::forget(log);
                } else {
                    drop(log);
                }
                log = reopen.as_mut().expect("checked")();
            }
            75..=79 if !model.batches.is_empty() => {
                let i = rng.random_range(0..model.batches.len());
                let target = rng.random_range(model.batches[i].0..model.batches[i].1);
                if target >= model.log_start {
                    log.truncate_to(target).unwrap();
                    model.log_start = model.log_start.min(model.batches[i].0);
                    model.batches.truncate(i);
                }
            }
            80..=82 if !model.batches.is_empty() => {
                let end = model.end(model.log_start);
                let target = rng.random_range(model.log_start..=end);
                log.advance_log_start(target).unwrap();
                model.log_start = target;
                model.batches.retain(|b| b.1 > target);
            }
            _ => {}
        }
        let end = log.log_end_offset();
        assert_eq!(end, model.end(end), "step {step}: log end offset");
        assert_eq!(
            log.log_start_offset(),
            model.log_start.min(end),
            "step {step}"
        );
        if model.batches.is_empty() {
            continue;
        }
        let start = log.log_start_offset();
        let offset = rng.random_range(start..=end);
        let got = log.read(offset, usize::MAX, end, true).unwrap().records;
        assert_eq!(
            got.to_vec(),
            model.expected_read(offset),
            "step {step}: read at {offset}"
        );
    }
}

#[test]
fn randomized_against_model_memory() {
    for seed in 0..5 {
        let log: Box<dyn PartitionLog> = Box::new(MemoryLog::new(small_segments(3)));
        random_ops(seed, log, None);
    }
}

#[test]
fn randomized_against_model_file() {
    for seed in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let config = LogConfig {
            index_interval_bytes: 64,
            ..small_segments(3)
        };
        let log: Box<dyn PartitionLog> = Box::new(FileLog::open(&path, config.clone(), 0).unwrap());
        let mut reopen = || -> Box<dyn PartitionLog> {
            Box::new(FileLog::open(&path, config.clone(), 0).unwrap())
        };
        random_ops(seed, log, Some(&mut reopen));
    }
}
