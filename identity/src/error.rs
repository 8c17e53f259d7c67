//! The crate's one error type, by what the caller does about it.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while issuing, loading or reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something that cannot be issued or parsed (a bad identity, a bad
    /// SAN, a validity beyond the limit, a PEM that is not what it claims to be). Fix the input.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A certificate does not carry a Ferry identity, or carries a malformed one. The peer is
    /// not one of ours.
    #[error("the certificate carries no valid Ferry identity: {0}")]
    NoIdentity(String),
    /// Generating a key or signing failed inside the crypto library.
    #[error("certificate generation failed: {0}")]
    Crypto(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Crypto(e.to_string())
    }
}
