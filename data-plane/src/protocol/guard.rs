//! A walk over each request body that refuses wire-declared sizes the body cannot hold.
//!
//! The `kafka-protocol` codecs size their buffers from the lengths on the wire before they read a
//! single element: an array is decoded with `Vec::with_capacity(n)`, where `n` is the `i32`
//! (classic encoding) or the unsigned varint minus one (compact encoding) that precedes it, and a
//! string or byte field may be decoded with `vec![0; n]`. A 20-byte request that claims 2^31
//! topics would make the broker ask for hundreds of gigabytes, and the process would abort. No
//! bound that the crate honours prevents it: the array decoders reserve before they read an
//! element and never ask the buffer how many bytes remain, so neither a shorter `Bytes` nor a
//! custom `ByteBuf` can stop the reservation. Size limits must be checked before any allocation,
//! so [`check_body`] walks the body first, field by field, and compares every length prefix with
//! the bytes that remain:
//!
//! - a string, byte field or tagged-field value of `n` bytes needs `n` bytes;
//! - an array of `n` elements needs `n` times the smallest encoding of one element (at least 1
//!   byte: 4 for an `i32`, and for a struct the sum of its fields' smallest encodings);
//! - a fixed-size field that runs past the end of the body is a truncation.
//!
//! The walk allocates nothing. Its work is linear in the body's length, because the loop over an
//! array runs only after its count has been checked against the remaining bytes. Recursion follows
//! the static descriptions in [`super::bodies`], never the input.
//!
//! The guard knows nothing of its own about the requests: which APIs and versions it accepts, and
//! each body's layout, come from [`super::versions::SUPPORTED_APIS`] (each row names its body's
//! description), and whether a version is flexible (compact lengths, tagged fields) from the
//! crate's `ApiKey::request_header_version`: a request is flexible exactly when its header is
//! (version 2).
//!
//! The guard does not duplicate the codec's other checks: whether a field may be null, UTF-8,
//! enum values, tags the codec rejects at a version. It accepts bytes after the end of the body,
//! which the codec ignores and which cost nothing. To stay in step with the codec, it reads a
//! *known* tagged field by its type and ignores the declared size, as the codec does (for the
//! served versions, the only one is Fetch v12's `cluster_id`, a compact nullable string).
//!
//! The tests encode requests with the crate at every version the codec knows and check that the
//! walk consumes exactly the encoded bytes. They also build a body from each description (every
//! field, every known tag, probes of unknown ones) and check that the codec decodes exactly those
//! bytes and encodes them back unchanged, so a description that disagrees with the codec fails
//! a test even for an API without hand-built requests.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use super::schema::{Kind, Schema, is_flexible};
use super::versions::{SUPPORTED_APIS, SupportedApi};

/// Why [`check_body`] refused a request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The guard has no validated schema for this API at this version.
    #[error("{api_key:?} v{version} is not a request the broker serves")]
    Unsupported {
        /// The request's API.
        api_key: ApiKey,
        /// The request's version.
        version: i16,
    },
    /// A fixed-size field runs past the end of the body.
    #[error("{place} at byte {offset} needs {needed} bytes but only {remaining} remain")]
    Truncated {
        /// The field being read.
        place: Place,
        /// Where the field starts in the body.
        offset: usize,
        /// The bytes the field takes.
        needed: usize,
        /// The bytes left in the body at `offset`.
        remaining: usize,
    },
    /// A length prefix is negative and not the null marker -1.
    #[error("{place} at byte {offset} has the negative length {length}")]
    NegativeLength {
        /// The field whose length this is.
        place: Place,
        /// Where the length prefix starts in the body.
        offset: usize,
        /// The declared length.
        length: i64,
    },
    /// A string, bytes or tagged-field value is longer than the rest of the body.
    #[error(
        "{place}: {length} bytes declared at byte {offset} cannot fit in the {remaining} \
         remaining bytes"
    )]
    TooLong {
        /// The field whose length this is.
        place: Place,
        /// Where the length prefix starts in the body.
        offset: usize,
        /// The declared length in bytes.
        length: u64,
        /// The bytes left in the body after the length prefix.
        remaining: usize,
    },
    /// An array (or a list of tagged fields) has more elements than the rest of the body holds.
    #[error(
        "{place}: array of {count} elements at byte {offset} cannot fit in the {remaining} \
         remaining bytes (each element takes at least {element_bytes_min})"
    )]
    ArrayTooLong {
        /// The array.
        place: Place,
        /// Where the count prefix starts in the body.
        offset: usize,
        /// The declared number of elements.
        count: u64,
        /// The smallest encoding of one element, in bytes.
        element_bytes_min: u64,
        /// The bytes left in the body after the count prefix.
        remaining: usize,
    },
}

/// A field in a request schema, for error messages: `FetchTopic.partitions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The struct, as the codec names it.
    pub schema: &'static str,
    /// The field, as the codec names it.
    pub field: &'static str,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.field)
    }
}

/// Checks every length in a request body against the bytes present, before the codec allocates.
///
/// `body` is the request after its header. Returns an error for an API or version the broker does
/// not serve, for a declared size the body cannot hold, and for a body that ends inside a field.
/// `Ok` means the codec's allocations are bounded by the body's length, not that the codec will
/// accept the body.
pub fn check_body(api_key: ApiKey, version: i16, body: &Bytes) -> Result<(), GuardError> {
    let api = SUPPORTED_APIS
        .iter()
        .find(|api| api.key == api_key)
        .filter(|api| api.versions.min <= version && version <= api.versions.max)
        .ok_or(GuardError::Unsupported { api_key, version })?;
    walk(api, version, body).map(|_consumed| ())
}

/// Walks one body with `api`'s schema at `version`, returning the number of bytes it consumed.
fn walk(api: &SupportedApi, version: i16, body: &[u8]) -> Result<usize, GuardError> {
    let mut walker = Walker::new(body, version, is_flexible(api.key, version));
    walker.structure(&api.request.body)?;
    Ok(walker.pos)
}

/// Names one of `schema`'s fields in an error.
fn field_place(schema: &Schema, field: &'static str) -> Place {
    Place {
        schema: schema.name,
        field,
    }
}

/// The width of a length prefix in the classic (non-flexible) encoding.
#[derive(Debug, Clone, Copy)]
enum Classic {
    /// Strings.
    Int16,
    /// Bytes and arrays.
    Int32,
}

/// A cursor over one body, walking it with the schema of one version.
struct Walker<'a> {
    /// The request body.
    body: &'a [u8],
    /// The next byte to read.
    pos: usize,
    /// The request version: it selects the fields on the wire.
    version: i16,
    /// Whether lengths are compact and structs end with tagged fields.
    flexible: bool,
    /// Every length prefix read, in order, so that tests can corrupt each one.
    #[cfg(test)]
    prefixes: Vec<std::ops::Range<usize>>,
}

impl<'a> Walker<'a> {
    /// A walker at the start of `body`.
    fn new(body: &'a [u8], version: i16, flexible: bool) -> Self {
        Walker {
            body,
            pos: 0,
            version,
            flexible,
            #[cfg(test)]
            prefixes: Vec::new(),
        }
    }

    /// The bytes not yet read.
    fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    /// Walks a struct's fields present at this version, then its tagged fields if flexible.
    fn structure(&mut self, schema: &Schema) -> Result<(), GuardError> {
        let version = self.version;
        for field in schema
            .fields
            .iter()
            .filter(|f| f.versions.contains(version))
        {
            self.value(field_place(schema, field.name), field.kind)?;
        }
        if self.flexible {
            self.tagged_fields(schema)?;
        }
        Ok(())
    }

    /// Walks one value of `kind`.
    fn value(&mut self, place: Place, kind: Kind) -> Result<(), GuardError> {
        match kind {
            Kind::Int8 | Kind::Bool => self.take::<1>(place).map(drop),
            Kind::Int16 => self.take::<2>(place).map(drop),
            Kind::Int32 => self.take::<4>(place).map(drop),
            Kind::Int64 => self.take::<8>(place).map(drop),
            Kind::Uuid => self.take::<16>(place).map(drop),
            Kind::String => self.sized(place, Classic::Int16),
            Kind::Bytes => self.sized(place, Classic::Int32),
            Kind::Array(element) => self.array(place, element),
            Kind::Struct(schema) => self.structure(schema),
        }
    }

    /// Walks a length-prefixed string or byte field.
    fn sized(&mut self, place: Place, classic: Classic) -> Result<(), GuardError> {
        let offset = self.pos;
        match self.length(place, classic)? {
            None => Ok(()),
            Some(length) => self.skip_declared(place, offset, length),
        }
    }

    /// Walks an array: checks its count against the remaining bytes, then each element.
    fn array(&mut self, place: Place, element: &Kind) -> Result<(), GuardError> {
        let offset = self.pos;
        let Some(count) = self.length(place, Classic::Int32)? else {
            return Ok(());
        };
        let element_bytes_min = self.size_min(*element).max(1);
        self.check_count(place, offset, count, element_bytes_min)?;
        for _ in 0..count {
            self.value(place, *element)?;
        }
        Ok(())
    }

    /// Walks the tagged fields that end a flexible struct.
    ///
    /// Mirrors the codec: a tag it decodes by type at this version is walked by type, and the
    /// declared size is ignored; any other tag is skipped by its declared size.
    fn tagged_fields(&mut self, schema: &Schema) -> Result<(), GuardError> {
        let place = field_place(schema, "tagged fields");
        let offset = self.pos;
        let count = self.uvarint(place)?;
        self.note_prefix(offset);
        // Each tagged field takes at least a one-byte tag and a one-byte size.
        self.check_count(place, offset, u64::from(count), 2)?;
        for _ in 0..count {
            let tag = self.uvarint(place)?;
            let size_offset = self.pos;
            let size = self.uvarint(place)?;
            let known = schema
                .tagged
                .iter()
                .find(|t| t.tag == tag && t.field.versions.contains(self.version));
            match known {
                Some(t) => self.value(field_place(schema, t.field.name), t.field.kind)?,
                None => self.skip_declared(place, size_offset, u64::from(size))?,
            }
        }
        Ok(())
    }

    /// The smallest encoding of one value of `kind` at this version, in bytes.
    fn size_min(&self, kind: Kind) -> u64 {
        let prefix = |classic_bytes: u64| if self.flexible { 1 } else { classic_bytes };
        match kind {
            Kind::Int8 | Kind::Bool => 1,
            Kind::Int16 => 2,
            Kind::Int32 => 4,
            Kind::Int64 => 8,
            Kind::Uuid => 16,
            Kind::String => prefix(2),
            Kind::Bytes | Kind::Array(_) => prefix(4),
            Kind::Struct(schema) => {
                let fields = schema
                    .fields
                    .iter()
                    .filter(|f| f.versions.contains(self.version));
                // A flexible struct ends with at least a one-byte count of tagged fields.
                fields.map(|f| self.size_min(f.kind)).sum::<u64>() + u64::from(self.flexible)
            }
        }
    }

    /// Fails unless `count` elements of at least `element_bytes_min` bytes fit in what remains.
    fn check_count(
        &self,
        place: Place,
        offset: usize,
        count: u64,
        element_bytes_min: u64,
    ) -> Result<(), GuardError> {
        let remaining = self.remaining();
        if count.saturating_mul(element_bytes_min) > remaining as u64 {
            return Err(GuardError::ArrayTooLong {
                place,
                offset,
                count,
                element_bytes_min,
                remaining,
            });
        }
        Ok(())
    }

    /// Skips `length` bytes whose length prefix started at `offset`, if they are all there.
    fn skip_declared(
        &mut self,
        place: Place,
        offset: usize,
        length: u64,
    ) -> Result<(), GuardError> {
        let remaining = self.remaining();
        match usize::try_from(length) {
            Ok(length) if length <= remaining => {
                self.pos += length;
                Ok(())
            }
            _ => Err(GuardError::TooLong {
                place,
                offset,
                length,
                remaining,
            }),
        }
    }

    /// Reads a length prefix: `None` for null, else the declared length.
    fn length(&mut self, place: Place, classic: Classic) -> Result<Option<u64>, GuardError> {
        let offset = self.pos;
        let length = if self.flexible {
            // Compact lengths are stored plus one, so that 0 can mean null.
            i64::from(self.uvarint(place)?) - 1
        } else {
            match classic {
                Classic::Int16 => i64::from(i16::from_be_bytes(self.take::<2>(place)?)),
                Classic::Int32 => i64::from(i32::from_be_bytes(self.take::<4>(place)?)),
            }
        };
        self.note_prefix(offset);
        match u64::try_from(length) {
            Ok(length) => Ok(Some(length)),
            Err(_) if length == -1 => Ok(None),
            Err(_) => Err(GuardError::NegativeLength {
                place,
                offset,
                length,
            }),
        }
    }

    /// Reads an unsigned varint exactly as the codec does: at most five bytes, and bits beyond
    /// the 32nd are dropped rather than refused.
    fn uvarint(&mut self, place: Place) -> Result<u32, GuardError> {
        let mut value = 0u32;
        for i in 0..5 {
            let [byte] = self.take::<1>(place)?;
            value |= u32::from(byte & 0x7f) << (i * 7);
            if byte < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// Reads `N` bytes.
    fn take<const N: usize>(&mut self, place: Place) -> Result<[u8; N], GuardError> {
        let bytes = self
            .body
            .get(self.pos..self.pos + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok());
        let Some(bytes) = bytes else {
            let (offset, remaining) = (self.pos, self.remaining());
            return Err(GuardError::Truncated {
                place,
                offset,
                needed: N,
                remaining,
            });
        };
        self.pos += N;
        Ok(bytes)
    }

    /// Records the length prefix that started at `offset` and ends here (tests only).
    #[cfg(test)]
    fn note_prefix(&mut self, offset: usize) {
        self.prefixes.push(offset..self.pos);
    }

    /// Records the length prefix that started at `offset` and ends here (tests only).
    #[cfg(not(test))]
    fn note_prefix(&mut self, _offset: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::schema::sample;
    use bytes::BytesMut;
    use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
    use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
    };
    use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
    use kafka_protocol::messages::describe_configs_request::{
        DescribeConfigsRequest, DescribeConfigsResource,
    };
    use kafka_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
    use kafka_protocol::messages::fetch_request::{
        FetchPartition, FetchRequest, FetchTopic, ForgottenTopic, ReplicaState,
    };
    use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
    use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
    use kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
    use kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use kafka_protocol::messages::{BrokerId, GroupId, RequestKind, TopicName, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes, VersionRange};
    use uuid::Uuid;

    /// An unknown tag, which every flexible struct below carries so that skipping is exercised.
    const UNKNOWN_TAG: i32 = 99;

    fn text(s: &'static str) -> StrBytes {
        StrBytes::from_static_str(s)
    }

    fn topic(s: &'static str) -> TopicName {
        TopicName(text(s))
    }

    fn tag() -> Bytes {
        Bytes::from_static(b"tagged")
    }

    fn encode<T: Encodable>(request: &T, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        request
            .encode(&mut buf, version)
            .expect("the test request encodes");
        buf.freeze()
    }

    fn produce(v: i16) -> Bytes {
        let partition = |index| {
            PartitionProduceData::default()
                .with_index(index)
                .with_records(Some(Bytes::from_static(b"not really a record batch")))
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let topic_data = |name| {
            TopicProduceData::default()
                .with_name(topic(name))
                .with_topic_id(if v >= 13 {
                    Uuid::from_u128(7)
                } else {
                    Uuid::nil()
                })
                .with_partition_data(vec![partition(0), partition(1).with_records(None)])
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let request = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(text("tx"))))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![topic_data("a"), topic_data("b")])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn fetch(v: i16) -> Bytes {
        let partition = |index| {
            FetchPartition::default()
                .with_partition(index)
                .with_current_leader_epoch(3)
                .with_fetch_offset(100)
                .with_last_fetched_epoch(if v >= 12 { 2 } else { -1 })
                .with_log_start_offset(0)
                .with_partition_max_bytes(1 << 20)
                .with_replica_directory_id(if v >= 17 {
                    Uuid::from_u128(9)
                } else {
                    Uuid::nil()
                })
                .with_high_watermark(if v >= 18 { 50 } else { i64::MAX })
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let fetch_topic = FetchTopic::default()
            .with_topic(topic("a"))
            .with_topic_id(Uuid::from_u128(1))
            .with_partitions(vec![partition(0), partition(1)])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        let forgotten = ForgottenTopic::default()
            .with_topic(topic("b"))
            .with_topic_id(Uuid::from_u128(2))
            .with_partitions(vec![4, 5, 6])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        let replica_state = match v {
            15.. => ReplicaState::default()
                .with_replica_id(BrokerId(1))
                .with_replica_epoch(8),
            _ => ReplicaState::default(),
        };
        let request = FetchRequest::default()
            .with_cluster_id(Some(text("cluster")))
            .with_replica_id(BrokerId(if v <= 14 { 1 } else { -1 }))
            .with_replica_state(replica_state)
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(1 << 24)
            .with_isolation_level(1)
            .with_session_id(11)
            .with_session_epoch(12)
            .with_topics(vec![fetch_topic.clone(), fetch_topic])
            .with_forgotten_topics_data(if v >= 7 { vec![forgotten] } else { vec![] })
            .with_rack_id(text("rack"))
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn list_offsets(v: i16) -> Bytes {
        let partition = |index| {
            ListOffsetsPartition::default()
                .with_partition_index(index)
                .with_current_leader_epoch(4)
                .with_timestamp(-1)
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let list_topic = ListOffsetsTopic::default()
            .with_name(topic("a"))
            .with_partitions(vec![partition(0), partition(1)])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(if v >= 2 { 1 } else { 0 })
            .with_topics(vec![list_topic.clone(), list_topic])
            .with_timeout_ms(1000)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn metadata(v: i16) -> Bytes {
        let named = MetadataRequestTopic::default()
            .with_topic_id(Uuid::from_u128(3))
            .with_name(Some(topic("a")))
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        let mut topics = vec![named.clone(), named];
        if v >= 10 {
            topics.push(MetadataRequestTopic::default().with_topic_id(Uuid::from_u128(4)));
        }
        let request = MetadataRequest::default()
            .with_topics(Some(topics))
            .with_allow_auto_topic_creation(v < 4)
            .with_include_cluster_authorized_operations((8..=10).contains(&v))
            .with_include_topic_authorized_operations(v >= 8)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn api_versions(v: i16) -> Bytes {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(text("ferry-test"))
            .with_client_software_version(text("1.0"))
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn create_topics(v: i16) -> Bytes {
        let assignment = |index| {
            CreatableReplicaAssignment::default()
                .with_partition_index(index)
                .with_broker_ids(vec![BrokerId(1), BrokerId(2), BrokerId(3)])
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let config = |value| {
            CreatableTopicConfig::default()
                .with_name(text("cleanup.policy"))
                .with_value(value)
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let creatable = CreatableTopic::default()
            .with_name(topic("a"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![assignment(0), assignment(1)])
            .with_configs(vec![config(Some(text("compact"))), config(None)])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        let request = CreateTopicsRequest::default()
            .with_topics(vec![creatable.clone(), creatable])
            .with_timeout_ms(1000)
            .with_validate_only(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn delete_topics(v: i16) -> Bytes {
        let state = |name| {
            DeleteTopicState::default()
                .with_name(name)
                .with_topic_id(Uuid::from_u128(5))
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let request = DeleteTopicsRequest::default()
            .with_topics(if v >= 6 {
                vec![state(Some(topic("a"))), state(None)]
            } else {
                vec![]
            })
            .with_topic_names(vec![topic("a"), topic("b")])
            .with_timeout_ms(1000)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn describe_configs(v: i16) -> Bytes {
        let resource = |keys| {
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(text("a"))
                .with_configuration_keys(keys)
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let request = DescribeConfigsRequest::default()
            .with_resources(vec![
                resource(Some(vec![text("cleanup.policy"), text("retention.ms")])),
                resource(None),
            ])
            .with_include_synonyms(true)
            .with_include_documentation(v >= 3)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn alter_configs(v: i16) -> Bytes {
        use kafka_protocol::messages::alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let config = |value| {
            AlterableConfig::default()
                .with_name(text("cleanup.policy"))
                .with_value(value)
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let resource = AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text("a"))
            .with_configs(vec![config(Some(text("compact"))), config(None)])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        let request = AlterConfigsRequest::default()
            .with_resources(vec![resource.clone(), resource])
            .with_validate_only(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn create_partitions(v: i16) -> Bytes {
        let assignment = |ids: &[i32]| {
            CreatePartitionsAssignment::default()
                .with_broker_ids(ids.iter().copied().map(BrokerId).collect())
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let partitions_topic = |name, assignments| {
            CreatePartitionsTopic::default()
                .with_name(topic(name))
                .with_count(3)
                .with_assignments(assignments)
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                partitions_topic("a", Some(vec![assignment(&[1, 2]), assignment(&[3])])),
                partitions_topic("b", None),
            ])
            .with_timeout_ms(1000)
            .with_validate_only(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn incremental_alter_configs(v: i16) -> Bytes {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let config = |operation, value| {
            AlterableConfig::default()
                .with_name(text("cleanup.policy"))
                .with_config_operation(operation)
                .with_value(value)
                .with_unknown_tagged_field(UNKNOWN_TAG, tag())
        };
        let resource = AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text("a"))
            .with_configs(vec![config(0, Some(text("compact"))), config(1, None)])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![resource.clone(), resource])
            .with_validate_only(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn offset_for_leader_epoch(v: i16) -> Bytes {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(topic("orders"))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(3)
                            .with_leader_epoch(2)
                            .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
                    ])
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn describe_quorum(v: i16) -> Bytes {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        let request = DescribeQuorumRequest::default()
            .with_topics(vec![
                TopicData::default()
                    .with_topic_name(topic("__cluster_metadata"))
                    .with_partitions(vec![
                        PartitionData::default()
                            .with_partition_index(0)
                            .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
                    ])
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn init_producer_id(v: i16) -> Bytes {
        let mut request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(text("txn"))))
            .with_transaction_timeout_ms(60_000)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        if v >= 3 {
            request = request.with_producer_id(5.into()).with_producer_epoch(1);
        }
        encode(&request, v)
    }

    fn delete_records(v: i16) -> Bytes {
        use kafka_protocol::messages::delete_records_request::{
            DeleteRecordsPartition, DeleteRecordsTopic,
        };
        let request = kafka_protocol::messages::DeleteRecordsRequest::default()
            .with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(topic("orders"))
                    .with_partitions(vec![
                        DeleteRecordsPartition::default()
                            .with_partition_index(1)
                            .with_offset(42)
                            .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
                    ])
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ])
            .with_timeout_ms(1000)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn describe_log_dirs(v: i16) -> Bytes {
        use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
        let request = kafka_protocol::messages::DescribeLogDirsRequest::default()
            .with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic("orders"))
                    .with_partitions(vec![0, 2])
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ]))
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn describe_cluster(v: i16) -> Bytes {
        let request = kafka_protocol::messages::DescribeClusterRequest::default()
            .with_include_cluster_authorized_operations(true)
            .with_endpoint_type(if v >= 1 { 2 } else { 1 })
            .with_include_fenced_brokers(v >= 2)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn offset_commit(v: i16) -> Bytes {
        use kafka_protocol::messages::offset_commit_request::{
            OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
        };
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_generation_id_or_member_epoch(3)
            .with_member_id(text("m-1"))
            .with_group_instance_id(if v >= 7 { Some(text("i")) } else { None })
            .with_retention_time_ms(if v <= 4 { 1000 } else { -1 })
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic("orders"))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(42)
                            .with_committed_leader_epoch(if v >= 6 { 2 } else { -1 })
                            .with_committed_metadata(Some(text("meta")))
                            .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
                    ])
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn offset_fetch(v: i16) -> Bytes {
        use kafka_protocol::messages::offset_fetch_request::{
            OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic,
            OffsetFetchRequestTopics,
        };
        let mut request = OffsetFetchRequest::default()
            .with_require_stable(v >= 7)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        if v <= 7 {
            request = request
                .with_group_id(GroupId(text("g")))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(topic("orders"))
                        .with_partition_indexes(vec![0, 1])
                        .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
                ]));
        } else {
            request = request.with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(text("g")))
                    .with_member_id(if v >= 9 { Some(text("m")) } else { None })
                    .with_member_epoch(if v >= 9 { 4 } else { -1 })
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(topic("orders"))
                            .with_partition_indexes(vec![0, 1])
                            .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
                    ]))
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ]);
        }
        encode(&request, v)
    }

    fn find_coordinator(v: i16) -> Bytes {
        use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
        let request = FindCoordinatorRequest::default()
            .with_key(if v <= 3 { text("g") } else { text("") })
            .with_key_type(if v >= 1 { 1 } else { 0 })
            .with_coordinator_keys(if v >= 4 {
                vec![text("g"), text("h")]
            } else {
                vec![]
            })
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn join_group(v: i16) -> Bytes {
        use kafka_protocol::messages::join_group_request::{
            JoinGroupRequest, JoinGroupRequestProtocol,
        };
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if v >= 1 { 30_000 } else { -1 })
            .with_member_id(text("m"))
            .with_group_instance_id(if v >= 5 { Some(text("i")) } else { None })
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(text("range"))
                    .with_metadata(Bytes::from_static(b"subscription"))
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ])
            .with_reason(if v >= 8 { Some(text("why")) } else { None })
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn heartbeat(v: i16) -> Bytes {
        use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_generation_id(2)
            .with_member_id(text("m"))
            .with_group_instance_id(if v >= 3 { Some(text("i")) } else { None })
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn leave_group(v: i16) -> Bytes {
        use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
        let members = if v >= 3 {
            vec![
                MemberIdentity::default()
                    .with_member_id(text("m"))
                    .with_group_instance_id(Some(text("i")))
                    .with_reason(if v >= 5 { Some(text("bye")) } else { None })
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ]
        } else {
            vec![]
        };
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_member_id(if v <= 2 { text("m") } else { text("") })
            .with_members(members)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn sync_group(v: i16) -> Bytes {
        use kafka_protocol::messages::sync_group_request::{
            SyncGroupRequest, SyncGroupRequestAssignment,
        };
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_generation_id(2)
            .with_member_id(text("m"))
            .with_group_instance_id(if v >= 3 { Some(text("i")) } else { None })
            .with_protocol_type(if v >= 5 { Some(text("consumer")) } else { None })
            .with_protocol_name(if v >= 5 { Some(text("range")) } else { None })
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(text("m"))
                    .with_assignment(Bytes::from_static(b"assignment"))
                    .with_unknown_tagged_field(UNKNOWN_TAG, tag()),
            ])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn describe_groups(v: i16) -> Bytes {
        use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(text("g")), GroupId(text("h"))])
            .with_include_authorized_operations(v >= 3)
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn list_groups(v: i16) -> Bytes {
        use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
        let request = ListGroupsRequest::default()
            .with_states_filter(if v >= 4 { vec![text("Stable")] } else { vec![] })
            .with_types_filter(if v >= 5 {
                vec![text("classic")]
            } else {
                vec![]
            })
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn delete_groups(v: i16) -> Bytes {
        use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
        let request = DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(text("g")), GroupId(text("h"))])
            .with_unknown_tagged_field(UNKNOWN_TAG, tag());
        encode(&request, v)
    }

    fn offset_delete(v: i16) -> Bytes {
        use kafka_protocol::messages::offset_delete_request::{
            OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
        };
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(topic("orders"))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(3),
                    ]),
            ]);
        encode(&request, v)
    }

    /// A body of `key` at version `v` with every array non-empty, encoded by the crate.
    fn body(key: ApiKey, v: i16) -> Bytes {
        match key {
            ApiKey::Produce => produce(v),
            ApiKey::Fetch => fetch(v),
            ApiKey::ListOffsets => list_offsets(v),
            ApiKey::Metadata => metadata(v),
            ApiKey::ApiVersions => api_versions(v),
            ApiKey::CreateTopics => create_topics(v),
            ApiKey::DeleteTopics => delete_topics(v),
            ApiKey::DescribeConfigs => describe_configs(v),
            ApiKey::AlterConfigs => alter_configs(v),
            ApiKey::CreatePartitions => create_partitions(v),
            ApiKey::IncrementalAlterConfigs => incremental_alter_configs(v),
            ApiKey::DescribeQuorum => describe_quorum(v),
            ApiKey::InitProducerId => init_producer_id(v),
            ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch(v),
            ApiKey::DeleteRecords => delete_records(v),
            ApiKey::DescribeLogDirs => describe_log_dirs(v),
            ApiKey::DescribeCluster => describe_cluster(v),
            ApiKey::OffsetCommit => offset_commit(v),
            ApiKey::OffsetFetch => offset_fetch(v),
            ApiKey::FindCoordinator => find_coordinator(v),
            ApiKey::JoinGroup => join_group(v),
            ApiKey::Heartbeat => heartbeat(v),
            ApiKey::LeaveGroup => leave_group(v),
            ApiKey::SyncGroup => sync_group(v),
            ApiKey::DescribeGroups => describe_groups(v),
            ApiKey::ListGroups => list_groups(v),
            ApiKey::DeleteGroups => delete_groups(v),
            ApiKey::OffsetDelete => offset_delete(v),
            // An API without a hand-built request: the body built from its description, which
            // the round-trip test checks against the codec.
            other => {
                let api = SUPPORTED_APIS.iter().find(|api| api.key == other);
                let api = api.unwrap_or_else(|| panic!("{other:?} is not served"));
                Bytes::from(sample(&api.request.body, v, is_flexible(other, v), 3))
            }
        }
    }

    /// The versions the codec decodes for `key` (one table, shared with the version policy's
    /// tests).
    fn codec_versions(key: ApiKey) -> VersionRange {
        crate::protocol::versions::codec_versions(key)
    }

    /// Every served (api, version) with its test body.
    fn served_bodies() -> Vec<(&'static SupportedApi, i16, Bytes)> {
        let versions = |api: &'static SupportedApi| {
            (api.versions.min..=api.versions.max).map(move |v| (api, v))
        };
        SUPPORTED_APIS
            .iter()
            .flat_map(versions)
            .map(|(api, v)| (api, v, body(api.key, v)))
            .collect()
    }

    /// The codec's decode of `body`, and how many bytes it consumed if it succeeded.
    fn codec_consumed(key: ApiKey, version: i16, body: &Bytes) -> Option<usize> {
        let mut rest = body.clone();
        RequestKind::decode(key, &mut rest, version)
            .ok()
            .map(|_| body.len() - rest.len())
    }

    #[test]
    fn schemas_consume_exactly_what_the_codec_encodes_at_every_codec_version() {
        let mut checked = 0;
        for api in SUPPORTED_APIS {
            let codec = codec_versions(api.key);
            for v in codec.min..=codec.max {
                let body = body(api.key, v);
                assert_eq!(walk(api, v, &body), Ok(body.len()), "{:?} v{v}", api.key);
                assert_eq!(
                    codec_consumed(api.key, v, &body),
                    Some(body.len()),
                    "{:?} v{v}",
                    api.key
                );
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            11 + 15
                + 10
                + 14
                + 5
                + 6
                + 6
                + 6
                + 3
                + 4
                + 3
                + 4
                + 2
                + 3
                + 3
                + 4
                + 3
                + (8 + 9 + 7 + 10 + 5 + 6 + 6 + 7 + 6 + 3 + 1)
                // Describe/Create/DeleteAcls 1-3, Describe/AlterUserScramCredentials 0.
                + (3 + 3 + 3 + 1 + 1)
                // SaslHandshake 0-1, SaslAuthenticate 0-2.
                + (2 + 3)
        );
    }

    #[test]
    fn every_description_round_trips_through_the_codec_at_every_codec_version() {
        for api in SUPPORTED_APIS {
            let codec = codec_versions(api.key);
            for (v, probe_bytes) in (codec.min..=codec.max).flat_map(|v| [(v, 3), (v, 5)]) {
                let flexible = is_flexible(api.key, v);
                let body = Bytes::from(sample(&api.request.body, v, flexible, probe_bytes));
                let at = format!("{:?} v{v}, probes of {probe_bytes} bytes", api.key);
                assert_eq!(walk(api, v, &body), Ok(body.len()), "{at}");
                let mut rest = body.clone();
                let decoded = RequestKind::decode(api.key, &mut rest, v)
                    .unwrap_or_else(|e| panic!("{at}: the codec refuses the sample: {e}"));
                assert_eq!(rest.len(), 0, "{at}: the codec left bytes over");
                let mut encoded = BytesMut::new();
                decoded
                    .encode(&mut encoded, v)
                    .expect("a decoded request encodes");
                assert_eq!(
                    encoded.freeze(),
                    body,
                    "{at}: the codec encodes it otherwise"
                );
            }
        }
    }

    #[test]
    fn accepts_every_served_version() {
        let bodies = served_bodies();
        for (api, v, body) in &bodies {
            assert_eq!(check_body(api.key, *v, body), Ok(()), "{:?} v{v}", api.key);
        }
        assert_eq!(
            bodies.len(),
            10 + 9
                + 7
                + 13
                + 5
                + 6
                + 6
                + 6
                + 3
                + 4
                + 3
                + 4
                + 2
                + 3
                + 3
                + 4
                + 2
                + (8 + 9 + 5 + 10 + 5 + 6 + 6 + 6 + 6 + 3 + 1)
                // Describe/Create/DeleteAcls 1-3, Describe/AlterUserScramCredentials 0.
                + (3 + 3 + 3 + 1 + 1)
                // SaslHandshake 0-1, SaslAuthenticate 0-2.
                + (2 + 3)
        );
    }

    #[test]
    fn served_versions_are_the_advertised_ones() {
        // The guard reads the advertised table itself; check that it accepts exactly that.
        let empty = Bytes::new();
        let keys = (0..=i16::from(u8::MAX)).filter_map(|raw| ApiKey::try_from(raw).ok());
        for key in keys {
            for v in -1..=20 {
                let served = crate::protocol::versions::is_supported(key, v);
                let refused = matches!(
                    check_body(key, v, &empty),
                    Err(GuardError::Unsupported { .. })
                );
                assert_eq!(
                    served, !refused,
                    "{key:?} v{v}: the guard and the advertised versions disagree"
                );
            }
        }
    }

    #[test]
    fn refuses_what_is_not_served() {
        let empty = Bytes::new();
        for api in SUPPORTED_APIS {
            for v in [api.versions.min - 1, api.versions.max + 1, -1, i16::MAX] {
                let refused = GuardError::Unsupported {
                    api_key: api.key,
                    version: v,
                };
                assert_eq!(check_body(api.key, v, &empty), Err(refused));
            }
        }
        let refused = GuardError::Unsupported {
            api_key: ApiKey::AddOffsetsToTxn,
            version: 0,
        };
        assert_eq!(check_body(ApiKey::AddOffsetsToTxn, 0, &empty), Err(refused));
    }

    #[test]
    fn refuses_a_huge_metadata_topic_count() {
        let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
        let err = check_body(ApiKey::Metadata, 1, &body).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MetadataRequest.topics: array of 2147483647 elements at byte 0 cannot fit in the 0 \
             remaining bytes (each element takes at least 2)"
        );
    }

    #[test]
    fn refuses_a_huge_unknown_tagged_field() {
        // ApiVersions v3: two empty compact strings, one tagged field of 2^28 - 1 bytes.
        let body = Bytes::from_static(&[1, 1, 1, 99, 0xff, 0xff, 0xff, 0x7f, 0]);
        let err = check_body(ApiKey::ApiVersions, 3, &body).unwrap_err();
        assert!(
            matches!(
                err,
                GuardError::TooLong {
                    length: 0x0fff_ffff,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn accepts_trailing_bytes_as_the_codec_does() {
        let mut body = BytesMut::from(&metadata(12)[..]);
        body.extend_from_slice(b"trailing");
        let body = body.freeze();
        assert_eq!(check_body(ApiKey::Metadata, 12, &body), Ok(()));
        assert_eq!(
            codec_consumed(ApiKey::Metadata, 12, &body),
            Some(body.len() - 8)
        );
    }

    #[test]
    fn reads_a_known_tagged_field_by_type_as_the_codec_does() {
        let request = FetchRequest::default().with_cluster_id(Some(text("cluster")));
        let mut body = encode(&request, 12).to_vec();
        let n = body.len();
        // The body ends with its tagged fields: count 1, tag 0, size 8, then "cluster" as a
        // compact string (length + 1 = 8, then 7 bytes).
        assert_eq!(body[n - 11..n - 7], [1, 0, 8, 8]);
        // A size that disagrees with the string: the codec ignores it, and so must the guard.
        body[n - 9] = 0;
        let body = Bytes::from(body);
        let fetch = SUPPORTED_APIS
            .iter()
            .find(|api| api.key == ApiKey::Fetch)
            .expect("served");
        assert_eq!(codec_consumed(ApiKey::Fetch, 12, &body), Some(n));
        assert_eq!(walk(fetch, 12, &body), Ok(n));
    }

    /// Every array element kind in `schema` at version `v`, with the array's place.
    fn arrays(schema: &'static Schema, v: i16, out: &mut Vec<(Place, Kind)>) {
        let fields = schema
            .fields
            .iter()
            .chain(schema.tagged.iter().map(|t| &t.field));
        for field in fields.filter(|f| f.versions.contains(v)) {
            let mut kind = field.kind;
            if let Kind::Array(element) = kind {
                out.push((field_place(schema, field.name), *element));
                kind = *element;
            }
            if let Kind::Struct(nested) = kind {
                arrays(nested, v, out);
            }
        }
    }

    #[test]
    fn every_array_element_takes_at_least_one_byte_at_every_served_version() {
        for api in SUPPORTED_APIS {
            for v in api.versions.min..=api.versions.max {
                let mut found = Vec::new();
                arrays(&api.request.body, v, &mut found);
                let walker = Walker::new(&[], v, is_flexible(api.key, v));
                for (place, element) in found {
                    let size_min = walker.size_min(element);
                    assert!(size_min >= 1, "{:?} v{v} {place}: {size_min}", api.key);
                }
            }
        }
    }

    /// The length prefixes the walk reads in `body`, in order.
    fn prefixes(api: &SupportedApi, v: i16, body: &[u8]) -> Vec<std::ops::Range<usize>> {
        let mut walker = Walker::new(body, v, is_flexible(api.key, v));
        walker
            .structure(&api.request.body)
            .expect("the test body is valid");
        walker.prefixes
    }

    #[test]
    fn refuses_a_huge_length_in_every_prefix_at_the_lowest_and_highest_versions() {
        let mut corrupted = 0;
        for api in SUPPORTED_APIS {
            for v in [api.versions.min, api.versions.max] {
                let body = body(api.key, v);
                for prefix in prefixes(api, v, &body) {
                    let huge: &[u8] = match (is_flexible(api.key, v), prefix.len()) {
                        (true, _) => &[0xff, 0xff, 0xff, 0xff, 0x0f],
                        (false, 2) => &[0x7f, 0xff],
                        (false, _) => &[0x7f, 0xff, 0xff, 0xff],
                    };
                    let bad = [&body[..prefix.start], huge, &body[prefix.end..]].concat();
                    let result = check_body(api.key, v, &Bytes::from(bad));
                    assert!(
                        matches!(
                            result,
                            Err(GuardError::TooLong { .. } | GuardError::ArrayTooLong { .. })
                        ),
                        "{:?} v{v}, prefix at {prefix:?}: {result:?}",
                        api.key
                    );
                    corrupted += 1;
                }
            }
        }
        assert!(corrupted > 100, "only {corrupted} prefixes");
    }

    #[test]
    fn refuses_every_truncation() {
        for (api, v, body) in served_bodies() {
            for cut in 0..body.len() {
                let result = check_body(api.key, v, &body.slice(..cut));
                // The walk of a prefix follows the walk of the whole body, which reads every
                // byte, so no proper prefix can be accepted.
                assert!(result.is_err(), "{:?} v{v} cut at {cut}", api.key);
                assert_codec_agrees(api.key, v, &body.slice(..cut), result);
            }
        }
    }

    /// Checks the codec against the guard's verdict on `body`.
    ///
    /// Accepted: the codec must not panic, and if it decodes, it consumed what the guard did.
    /// Refused for any reason but an oversized array: decoding allocates no more than the
    /// guard allowed before the refusal, so it is safe to run, and the codec must refuse too.
    /// Refused for an oversized array: decoding could exhaust memory, so it is not run.
    fn assert_codec_agrees(key: ApiKey, v: i16, body: &Bytes, verdict: Result<(), GuardError>) {
        match verdict {
            Ok(()) => {
                let api = SUPPORTED_APIS
                    .iter()
                    .find(|api| api.key == key)
                    .expect("served");
                if let Some(consumed) = codec_consumed(key, v, body) {
                    assert_eq!(walk(api, v, body), Ok(consumed), "{key:?} v{v} {body:?}");
                }
            }
            Err(GuardError::ArrayTooLong { .. }) => {}
            Err(error) => {
                let decoded = codec_consumed(key, v, body);
                assert_eq!(
                    decoded, None,
                    "{key:?} v{v}: guard said {error}, codec decoded {body:?}"
                );
            }
        }
    }

    /// A xorshift64 generator: deterministic, and enough to scatter mutations.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Applies one to four random edits to `body`.
    fn mutate(rng: &mut XorShift, body: &[u8]) -> Vec<u8> {
        let mut bytes = body.to_vec();
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(6) {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes[at] = 0xff,
                2 => bytes[at] = 0x00,
                3 => bytes[at] ^= 1 << rng.below(8),
                4 => bytes.truncate(at),
                _ => bytes.insert(at, rng.next() as u8),
            }
        }
        bytes
    }

    #[test]
    fn random_mutations_never_panic_and_never_reach_a_huge_allocation() {
        const ITERATIONS: usize = 20_000;
        let bodies = served_bodies();
        let mut rng = XorShift(0x5eed_f00d_cafe_d00d);
        let (mut accepted, mut decoded) = (0, 0);
        for _ in 0..ITERATIONS {
            let (api, v, body) = &bodies[rng.below(bodies.len())];
            let bad = Bytes::from(mutate(&mut rng, body));
            let verdict = check_body(api.key, *v, &bad);
            if verdict.is_ok() {
                accepted += 1;
                decoded += usize::from(codec_consumed(api.key, *v, &bad).is_some());
            }
            assert_codec_agrees(api.key, *v, &bad, verdict);
        }
        eprintln!("accepted {accepted}, decoded {decoded} of {ITERATIONS}");
        // Enough of both verdicts that the loop exercises the guard and the codec.
        assert!(accepted > ITERATIONS / 10, "accepted {accepted}");
        assert!(accepted < ITERATIONS, "accepted all");
        assert!(decoded > ITERATIONS / 20, "decoded {decoded}");
    }
}
