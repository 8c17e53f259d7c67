//! The vocabulary in which [`super::bodies`] describes request bodies for the [`super::guard`].
//!
//! A body is a struct: fields in wire order, each with a wire type and the versions in which it is
//! on the wire, then (in a flexible version) tagged fields. The `request!` macro reads a
//! description that looks like the struct it describes:
//!
//! ```text
//! request! { FetchRequest {
//!     replica_id (..=14): Int32,             // a field in versions 0 to 14
//!     session_id (7..): Int32,               // a field from version 7 on
//!     topics: [FetchTopic {                  // an array of structs, in every version
//!         topic (..=12): String,
//!         partitions: [FetchPartition { ... }],
//!     }],
//!     forgotten_topics_data (7..): [...],
//!     rack_id (11..): String,
//!     #0 cluster_id: String,                 // tagged field 0, decoded by its type
//! } }
//! ```
//!
//! Field and struct names are the crate's, and only name places in errors. The top-level name is
//! the crate's request type itself: the macro takes the API key and the versions the codec decodes
//! from it (`Request::KEY`, `Message::VERSIONS`), so a description cannot name a request the crate
//! does not have, and the tests can check the description against that type's codec. Every field
//! ends with a comma. Whether a length prefix is classic or compact is not described: it follows
//! the version (see [`super::guard`]).
//!
//! The description omits what the guard does not check: nullability, defaults, enum values.

use kafka_protocol::protocol::VersionRange;

/// An inclusive range of versions in which a field is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions {
    /// The first version with the field.
    pub(crate) min: i16,
    /// The last version with the field.
    pub(crate) max: i16,
}

impl Versions {
    /// Every version.
    pub(crate) const ALL: Versions = Versions {
        min: 0,
        max: i16::MAX,
    };

    /// Whether `version` is in the range.
    pub(crate) fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// The wire type of a field. Whether a length prefix is classic or compact follows the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One byte.
    Int8,
    /// One byte, zero or not.
    Bool,
    /// Two bytes.
    Int16,
    /// Four bytes.
    Int32,
    /// Eight bytes.
    Int64,
    /// Sixteen bytes.
    Uuid,
    /// A string, nullable or not: `i16` length, or unsigned varint length + 1 (0 is null).
    String,
    /// Bytes, nullable or not: `i32` length, or unsigned varint length + 1 (0 is null).
    Bytes,
    /// Elements of one kind: `i32` count, or unsigned varint count + 1 (0 is null).
    Array(&'static Kind),
    /// A struct, inline: its fields, then its tagged fields if the version is flexible.
    Struct(&'static Schema),
}

/// One field of a struct.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// The codec's name for the field.
    pub(crate) name: &'static str,
    /// Its wire type.
    pub(crate) kind: Kind,
    /// The versions in which it is on the wire.
    pub(crate) versions: Versions,
}

/// A tagged field the codec decodes by its type (rather than skipping its declared size).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tagged {
    /// The tag on the wire.
    pub(crate) tag: u32,
    /// The field.
    pub(crate) field: Field,
}

/// The layout of one struct: fields in wire order, then (when flexible) tagged fields.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Schema {
    /// The codec's name for the struct.
    pub(crate) name: &'static str,
    /// The fields, in wire order.
    pub(crate) fields: &'static [Field],
    /// The tagged fields the codec decodes by type; any other tag is skipped by its size.
    pub(crate) tagged: &'static [Tagged],
}

/// One request body, tied to the `kafka-protocol` request type that decodes it.
#[derive(Debug, PartialEq)]
pub struct RequestSchema {
    /// The API key of the crate's request type (`Request::KEY`).
    pub(crate) key: i16,
    /// The versions the crate's request type decodes (`Message::VERSIONS`).
    pub(crate) codec: VersionRange,
    /// The body's top-level struct.
    pub(crate) body: Schema,
}

/// Describes a request body; see the module doc for the notation.
macro_rules! request {
    ($name:ident { $($body:tt)* }) => {
        $crate::protocol::schema::RequestSchema {
            key: <kafka_protocol::messages::$name as kafka_protocol::protocol::Request>::KEY,
            codec: <kafka_protocol::messages::$name as kafka_protocol::protocol::Message>::VERSIONS,
            body: $crate::protocol::schema::schema_struct!(@fields $name [] [] $($body)*),
        }
    };
}
pub(crate) use request;

/// A struct's description into a [`Schema`]: munches one field at a time, collecting plain
/// fields and tagged fields in two lists.
macro_rules! schema_struct {
    // Every field read.
    (@fields $name:ident [$($field:expr,)*] [$($tagged:expr,)*]) => {
        $crate::protocol::schema::Schema {
            name: stringify!($name),
            fields: &[$($field,)*],
            tagged: &[$($tagged,)*],
        }
    };
    // `#tag name (versions): kind,`
    (@fields $name:ident $fields:tt $tagged:tt
        # $tag:literal $field:ident $(($($v:tt)+))? : $($rest:tt)*) => {
        $crate::protocol::schema::schema_struct!(
            @kind $name $fields $tagged [$tag] $field [$($($v)+)?] $($rest)*
        )
    };
    // `name (versions): kind,`
    (@fields $name:ident $fields:tt $tagged:tt
        $field:ident $(($($v:tt)+))? : $($rest:tt)*) => {
        $crate::protocol::schema::schema_struct!(
            @kind $name $fields $tagged [] $field [$($($v)+)?] $($rest)*
        )
    };
    // The kind ends at the comma: an array, a struct or a fixed type.
    (@kind $name:ident $fields:tt $tagged:tt $slot:tt $field:ident $v:tt
        [$($element:tt)+], $($rest:tt)*) => {
        $crate::protocol::schema::schema_struct!(
            @push $name $fields $tagged $slot $field $v ([$($element)+]) $($rest)*
        )
    };
    (@kind $name:ident $fields:tt $tagged:tt $slot:tt $field:ident $v:tt
        $struct:ident { $($body:tt)* }, $($rest:tt)*) => {
        $crate::protocol::schema::schema_struct!(
            @push $name $fields $tagged $slot $field $v ($struct { $($body)* }) $($rest)*
        )
    };
    (@kind $name:ident $fields:tt $tagged:tt $slot:tt $field:ident $v:tt
        $fixed:ident, $($rest:tt)*) => {
        $crate::protocol::schema::schema_struct!(
            @push $name $fields $tagged $slot $field $v ($fixed) $($rest)*
        )
    };
    // A plain field joins the first list.
    (@push $name:ident [$($fields:expr,)*] $tagged:tt [] $field:ident [$($v:tt)*]
        ($($kind:tt)+) $($rest:tt)*) => {
        $crate::protocol::schema::schema_struct!(
            @fields $name
            [$($fields,)* $crate::protocol::schema::schema_field!($field [$($v)*] $($kind)+),]
            $tagged $($rest)*
        )
    };
    // A tagged field joins the second.
    (@push $name:ident $fields:tt [$($tagged:expr,)*] [$tag:literal] $field:ident [$($v:tt)*]
        ($($kind:tt)+) $($rest:tt)*) => {
        $crate::protocol::schema::schema_struct!(
            @fields $name $fields
            [$($tagged,)* $crate::protocol::schema::Tagged {
                tag: $tag,
                field: $crate::protocol::schema::schema_field!($field [$($v)*] $($kind)+),
            },]
            $($rest)*
        )
    };
}
pub(crate) use schema_struct;

/// One [`Field`]: its name, versions (`7..`, `..=12`, `7..=12`, or every version) and kind.
macro_rules! schema_field {
    ($field:ident [$($v:tt)*] $($kind:tt)+) => {
        $crate::protocol::schema::Field {
            name: stringify!($field),
            kind: $crate::protocol::schema::schema_kind!($($kind)+),
            versions: $crate::protocol::schema::schema_versions!($($v)*),
        }
    };
}
pub(crate) use schema_field;

/// A [`Kind`]: `[element]`, `Name { fields }` or a fixed type's name.
macro_rules! schema_kind {
    ([$($element:tt)+]) => {
        $crate::protocol::schema::Kind::Array(&$crate::protocol::schema::schema_kind!($($element)+))
    };
    ($struct:ident { $($body:tt)* }) => {
        $crate::protocol::schema::Kind::Struct(
            &$crate::protocol::schema::schema_struct!(@fields $struct [] [] $($body)*)
        )
    };
    ($fixed:ident) => {
        $crate::protocol::schema::Kind::$fixed
    };
}
pub(crate) use schema_kind;

/// A [`Versions`] range written as a Rust range of versions; nothing means every version.
macro_rules! schema_versions {
    () => {
        $crate::protocol::schema::Versions::ALL
    };
    ($min:literal ..= $max:literal) => {
        $crate::protocol::schema::Versions {
            min: $min,
            max: $max,
        }
    };
    ($min:literal ..) => {
        $crate::protocol::schema::Versions {
            min: $min,
            max: i16::MAX,
        }
    };
    (..= $max:literal) => {
        $crate::protocol::schema::Versions { min: 0, max: $max }
    };
}
pub(crate) use schema_versions;

/// Whether `version` of `key` is flexible: compact lengths, and tagged fields after each struct.
/// The crate knows it as the request header version, which is 2 exactly for flexible requests.
pub(crate) fn is_flexible(key: kafka_protocol::messages::ApiKey, version: i16) -> bool {
    key.request_header_version(version) >= 2
}

/// A body built from a description, for tests: every field the version has, every array of two
/// elements, every string and byte field non-null and non-empty, fixed-size fields from a
/// counter (bools true). In a flexible version each struct ends with the tagged fields the
/// description declares at this version, then [`SAMPLE_PROBED_TAGS`] that it does not declare at
/// any version, each with `probe_bytes` zero bytes, then [`SAMPLE_UNKNOWN_TAG`].
///
/// The codec decodes such a body and encodes it back to the same bytes only if it reads the
/// fields the description lists. A probed tag that the codec knows (a tagged field the
/// description forgot) is read by its type, which takes a fixed number of bytes from the zeros
/// and so cannot both fit a probe of 3 bytes and one of 5: one of the two bodies fails.
#[cfg(test)]
pub(crate) fn sample(schema: &Schema, version: i16, flexible: bool, probe_bytes: usize) -> Vec<u8> {
    let mut sampler = Sampler {
        out: Vec::new(),
        version,
        flexible,
        probe_bytes,
        counter: 0,
    };
    sampler.structure(schema);
    sampler.out
}

/// The unknown tag that [`sample`] puts in every flexible struct.
#[cfg(test)]
pub(crate) const SAMPLE_UNKNOWN_TAG: u32 = 99;

/// The tags that [`sample`] probes in every flexible struct, unless the description declares
/// them. (The codec's encoder writes unknown tags after the known ones, so a description whose
/// tags leave a gap below its highest would fail the round trip: none does.)
#[cfg(test)]
pub(crate) const SAMPLE_PROBED_TAGS: std::ops::RangeInclusive<u32> = 0..=7;

/// Writes a [`sample`] body.
#[cfg(test)]
struct Sampler {
    /// The body so far.
    out: Vec<u8>,
    /// The version being written.
    version: i16,
    /// Whether lengths are compact and structs end with tagged fields.
    flexible: bool,
    /// The size of each probed tag's value.
    probe_bytes: usize,
    /// The last byte written into a fixed-size field.
    counter: u8,
}

#[cfg(test)]
impl Sampler {
    /// Writes one struct, then its tagged fields if the version is flexible.
    fn structure(&mut self, schema: &Schema) {
        let version = self.version;
        for field in schema
            .fields
            .iter()
            .filter(|f| f.versions.contains(version))
        {
            self.value(field.kind);
        }
        if !self.flexible {
            return;
        }
        let known: Vec<&Tagged> = (schema.tagged.iter())
            .filter(|t| t.field.versions.contains(version))
            .collect();
        let probed: Vec<u32> = SAMPLE_PROBED_TAGS
            .filter(|&tag| schema.tagged.iter().all(|t| t.tag != tag))
            .collect();
        self.uvarint((known.len() + probed.len()) as u32 + 1);
        for tagged in known {
            let mut value = Sampler {
                out: Vec::new(),
                ..*self
            };
            value.value(tagged.field.kind);
            self.counter = value.counter;
            self.uvarint(tagged.tag);
            self.uvarint(value.out.len() as u32);
            self.out.extend_from_slice(&value.out);
        }
        for tag in probed {
            self.uvarint(tag);
            self.uvarint(self.probe_bytes as u32);
            self.out.resize(self.out.len() + self.probe_bytes, 0);
        }
        self.uvarint(SAMPLE_UNKNOWN_TAG);
        self.uvarint(3);
        self.out.extend_from_slice(b"tag");
    }

    /// Writes one value of `kind`.
    fn value(&mut self, kind: Kind) {
        match kind {
            Kind::Bool => self.out.push(1),
            Kind::Int8 => self.fixed(1),
            Kind::Int16 => self.fixed(2),
            Kind::Int32 => self.fixed(4),
            Kind::Int64 => self.fixed(8),
            Kind::Uuid => self.fixed(16),
            Kind::String => {
                self.length(2, 2);
                self.out.extend_from_slice(b"ab");
            }
            Kind::Bytes => {
                self.length(3, 4);
                self.out.extend_from_slice(b"xyz");
            }
            Kind::Array(element) => {
                self.length(2, 4);
                self.value(*element);
                self.value(*element);
            }
            Kind::Struct(schema) => self.structure(schema),
        }
    }

    /// Writes `n` bytes of a fixed-size field, each the next value of the counter (1 to 100).
    fn fixed(&mut self, n: usize) {
        for _ in 0..n {
            self.counter = self.counter % 100 + 1;
            self.out.push(self.counter);
        }
    }

    /// Writes a length prefix: compact, or classic of `classic_bytes` bytes.
    fn length(&mut self, length: u32, classic_bytes: usize) {
        if self.flexible {
            self.uvarint(length + 1);
        } else if classic_bytes == 2 {
            self.out.extend_from_slice(&(length as i16).to_be_bytes());
        } else {
            self.out.extend_from_slice(&(length as i32).to_be_bytes());
        }
    }

    /// Writes an unsigned varint.
    fn uvarint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.out.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }
}
