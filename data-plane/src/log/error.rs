//! Errors of the partition log, as categories the caller acts on.
//!
//! The broker turns these into per-partition Kafka error codes with [`Error::kafka_code`]; the
//! log itself never builds a response. Input from the network that is wrong is an error
//! ([`Error::Batch`]); a broken invariant inside the log is a bug and panics instead.

use super::Offset;
use super::batch::BatchError;
use super::config::ConfigError;

/// A `Result` whose error is the log's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong in a partition log operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record batches given to an append are invalid (corrupt, too large, malformed). The
    /// whole append was refused and nothing was written.
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
    /// The requested offset is outside `[log_start, log_end]`.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// The first offset the log holds.
        log_start: Offset,
        /// One past the last offset the log holds.
        log_end: Offset,
    },
    /// A follower append whose first offset does not continue the log.
    #[error("batch starts at offset {got} but the log ends at {expected}")]
    NonContiguous {
        /// The log end offset the batches had to start at.
        expected: Offset,
        /// The base offset of the first batch given.
        got: Offset,
    },
    /// Data found on disk is corrupt in a way recovery cannot repair.
    #[error("corrupt log data: {0}")]
    InvalidData(String),
    /// A topic configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An I/O operation on the log's files failed.
    #[error("log I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The Kafka error code a broker puts in the partition's response for this error.
    ///
    /// ```text
    /// Batch(..)            -> see BatchError::kafka_code (2 CORRUPT_MESSAGE, 10, 87)
    /// OffsetOutOfRange     -> 1  OFFSET_OUT_OF_RANGE
    /// NonContiguous        -> 2  CORRUPT_MESSAGE (a follower fetched something inconsistent)
    /// Config               -> 40 INVALID_CONFIG
    /// InvalidData, Io      -> 56 KAFKA_STORAGE_ERROR
    /// ```
    pub fn kafka_code(&self) -> i16 {
        match self {
            Error::Batch(e) => e.kafka_code(),
            Error::OffsetOutOfRange { .. } => 1,
            Error::NonContiguous { .. } => 2,
            Error::Config(_) => 40,
            Error::InvalidData(_) | Error::Io(_) => 56,
        }
    }
}
