//! The records of `__consumer_offsets`, in Kafka's own key/value schemas.
//!
//! Each record's key starts with a schema version that says what it is; a record without a
//! value (a tombstone) removes what the key names.
//!
//! ```text
//! OffsetCommitKey   (version 1): group string, topic string, partition i32
//! OffsetCommitValue (version 3): offset i64, leader_epoch i32, metadata string,
//!                                commit_timestamp i64
//! GroupMetadataKey  (version 2): group string
//! GroupMetadataValue(version 3): protocol_type string, generation i32,
//!                                protocol nullable string, leader nullable string,
//!                                current_state_timestamp i64,
//!                                members [member_id string, group_instance_id nullable string,
//!                                         client_id string, client_host string,
//!                                         rebalance_timeout i32, session_timeout i32,
//!                                         subscription bytes, assignment bytes]
//! ```
//! Strings are an i16 length and UTF-8 (-1 for null), bytes an i32 length, arrays an i32
//! count, all big-endian. Older value versions (0–2) are read too.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A committed offset for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client-supplied metadata.
    pub metadata: String,
    /// When the commit was made (ms).
    pub commit_timestamp: i64,
}

/// A group's durable state: what the group metadata record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Protocol type (`consumer`), empty when none.
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol.
    pub protocol: Option<String>,
    /// Leader's member id.
    pub leader: Option<String>,
    /// When the group's state last changed.
    pub state_timestamp: i64,
    /// Members of the generation.
    pub members: Vec<MemberRecord>,
}

/// One member in a [`GroupRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Subscription metadata for the chosen protocol.
    pub subscription: Bytes,
    /// Assignment in this generation.
    pub assignment: Bytes,
}

/// One record of the offsets topic, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// A committed offset (`None`: deleted or expired).
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The commit, or `None` for a tombstone.
        value: Option<CommittedOffset>,
    },
    /// A group's metadata (`None`: the group was deleted).
    Group {
        /// Group id.
        group: String,
        /// The group, or `None` for a tombstone.
        value: Option<GroupRecord>,
    },
}

/// A record that is not a valid offsets-topic record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid __consumer_offsets record: {0}")]
pub struct InvalidRecord(pub String);

impl OffsetsRecord {
    /// The record's key bytes.
    pub fn key(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            OffsetsRecord::Offset {
                group,
                topic,
                partition,
                ..
            } => {
                buf.put_i16(1);
                put_string(&mut buf, group);
                put_string(&mut buf, topic);
                buf.put_i32(*partition);
            }
            OffsetsRecord::Group { group, .. } => {
                buf.put_i16(2);
                put_string(&mut buf, group);
            }
        }
        buf.freeze()
    }

    /// The record's value bytes, `None` for a tombstone.
    pub fn value(&self) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        match self {
            OffsetsRecord::Offset { value, .. } => {
                let v = value.as_ref()?;
                buf.put_i16(3);
                buf.put_i64(v.offset);
                buf.put_i32(v.leader_epoch);
                put_string(&mut buf, &v.metadata);
                buf.put_i64(v.commit_timestamp);
            }
            OffsetsRecord::Group { value, .. } => {
                let g = value.as_ref()?;
                buf.put_i16(3);
                put_string(&mut buf, &g.protocol_type);
                buf.put_i32(g.generation);
                put_nullable_string(&mut buf, g.protocol.as_deref());
                put_nullable_string(&mut buf, g.leader.as_deref());
                buf.put_i64(g.state_timestamp);
                buf.put_i32(g.members.len() as i32);
                for m in &g.members {
                    put_string(&mut buf, &m.member_id);
                    put_nullable_string(&mut buf, m.group_instance_id.as_deref());
                    put_string(&mut buf, &m.client_id);
                    put_string(&mut buf, &m.client_host);
                    buf.put_i32(m.rebalance_timeout_ms);
                    buf.put_i32(m.session_timeout_ms);
                    put_bytes(&mut buf, &m.subscription);
                    put_bytes(&mut buf, &m.assignment);
                }
            }
        }
        Some(buf.freeze())
    }

    /// Decodes a record from its key and value.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, InvalidRecord> {
        let mut k = key;
        let version = get_i16(&mut k)?;
        match version {
            0 | 1 => {
                let group = get_string(&mut k)?;
                let topic = get_string(&mut k)?;
                let partition = get_i32(&mut k)?;
                let value = value.map(decode_offset).transpose()?;
                Ok(OffsetsRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = get_string(&mut k)?;
                let value = value.map(decode_group).transpose()?;
                Ok(OffsetsRecord::Group { group, value })
            }
            v => Err(InvalidRecord(format!("unknown key version {v}"))),
        }
    }
}

fn decode_offset(mut v: &[u8]) -> Result<CommittedOffset, InvalidRecord> {
    let version = get_i16(&mut v)?;
    let offset = get_i64(&mut v)?;
    let leader_epoch = if version >= 3 { get_i32(&mut v)? } else { -1 };
    let metadata = get_string(&mut v)?;
    let commit_timestamp = get_i64(&mut v)?;
    if version > 4 {
        return Err(InvalidRecord(format!(
            "unknown offset value version {version}"
        )));
    }
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

fn decode_group(mut v: &[u8]) -> Result<GroupRecord, InvalidRecord> {
    let version = get_i16(&mut v)?;
    if !(0..=4).contains(&version) {
        return Err(InvalidRecord(format!(
            "unknown group value version {version}"
        )));
    }
    let protocol_type = get_string(&mut v)?;
    let generation = get_i32(&mut v)?;
    let protocol = get_nullable_string(&mut v)?;
    let leader = get_nullable_string(&mut v)?;
    let state_timestamp = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let count = get_i32(&mut v)?.max(0) as usize;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = get_string(&mut v)?;
        let group_instance_id = if version >= 3 {
            get_nullable_string(&mut v)?
        } else {
            None
        };
        let client_id = get_string(&mut v)?;
        let client_host = get_string(&mut v)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut v)? } else { -1 };
        let session_timeout_ms = get_i32(&mut v)?;
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(MemberRecord {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupRecord {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn need(buf: &[u8], n: usize) -> Result<(), InvalidRecord> {
    if buf.remaining() < n {
        return Err(InvalidRecord(format!(
            "truncated: needed {n} bytes, {} left",
            buf.remaining()
        )));
    }
    Ok(())
}

fn get_i16(buf: &mut &[u8]) -> Result<i16, InvalidRecord> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut &[u8]) -> Result<i32, InvalidRecord> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

fn get_i64(buf: &mut &[u8]) -> Result<i64, InvalidRecord> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

fn get_nullable_string(buf: &mut &[u8]) -> Result<Option<String>, InvalidRecord> {
    let len = get_i16(buf)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    need(buf, len)?;
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|e| InvalidRecord(format!("string is not UTF-8: {e}")))?
        .to_string();
    buf.advance(len);
    Ok(Some(s))
}

fn get_string(buf: &mut &[u8]) -> Result<String, InvalidRecord> {
    get_nullable_string(buf)?.ok_or_else(|| InvalidRecord("null where a string is required".into()))
}

fn get_bytes(buf: &mut &[u8]) -> Result<Bytes, InvalidRecord> {
    let len = get_i32(buf)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    let len = len as usize;
    need(buf, len)?;
    let b = Bytes::copy_from_slice(&buf[..len]);
    buf.advance(len);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(record: OffsetsRecord) {
        let key = record.key();
        let value = record.value();
        assert_eq!(OffsetsRecord::decode(&key, value.as_deref()), Ok(record));
    }

    #[test]
    fn offset_commits_and_tombstones_roundtrip() {
        roundtrip(OffsetsRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
            value: Some(CommittedOffset {
                offset: 42,
                leader_epoch: 3,
                metadata: "meta".into(),
                commit_timestamp: 1_700_000_000_000,
            }),
        });
        roundtrip(OffsetsRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
            value: None,
        });
    }

    #[test]
    fn group_metadata_roundtrips() {
        roundtrip(OffsetsRecord::Group {
            group: "g".into(),
            value: Some(GroupRecord {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("m-1".into()),
                state_timestamp: 9,
                members: vec![MemberRecord {
                    member_id: "m-1".into(),
                    group_instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        });
        roundtrip(OffsetsRecord::Group {
            group: "g".into(),
            value: None,
        });
    }

    #[test]
    fn kafka_key_layout_is_version_then_fields() {
        let key = OffsetsRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
            value: None,
        }
        .key();
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(OffsetsRecord::decode(&[0, 9], None).is_err());
        assert!(OffsetsRecord::decode(&[0, 1, 0, 5, b'g'], None).is_err());
        assert!(OffsetsRecord::decode(&[0, 2, 0, 1, b'g'], Some(&[0, 3, 0])).is_err());
    }
}
