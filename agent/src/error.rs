//! The agent's error type: categories the caller acts on.

use std::path::Path;

/// A `Result` whose error is the agent's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What can stop an agent from starting. Once running, the agent never fails: it retries the
/// control plane and restarts nodes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The options are wrong; fix them.
    #[error("invalid agent options: {0}")]
    InvalidInput(String),
    /// A file in the data directory is corrupt; an operator must look.
    #[error("corrupt agent state: {0}")]
    InvalidData(String),
    /// The data directory cannot be read or written.
    #[error("{0}")]
    Io(String),
    /// The control plane refused to enroll this host (a spent, expired or foreign join
    /// token), or could not be reached to enroll it: get a new join token, or start the agent
    /// again once the control plane is up.
    #[error("enrollment failed: {0}")]
    Enrollment(String),
}

impl Error {
    /// An I/O error on `path`, as a sentence.
    pub fn io(path: &Path, err: std::io::Error) -> Error {
        Error::Io(format!("{}: {err}", path.display()))
    }
}
