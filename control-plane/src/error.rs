//! The control plane's error type: categories a caller acts on, not the places errors come
//! from.
//!
//! | variant | what the caller does | API mapping (later, in `api/`) |
//! |---|---|---|
//! | [`Error::InvalidInput`] | fix the request | 400 / INVALID_ARGUMENT |
//! | [`Error::NotFound`] | nothing to act on (also: another tenant's resource) | 404 / NOT_FOUND |
//! | [`Error::Conflict`] | re-read and decide; the [`Conflict`] says why | 409 / ALREADY_EXISTS or ABORTED |
//! | [`Error::ResourceExhausted`] | delete something first; a per-tenant limit ([`crate::model::limits`]) is reached | 429 / RESOURCE_EXHAUSTED |
//! | [`Error::Unavailable`] | retry later; nothing was changed | 503 / UNAVAILABLE |
//! | [`Error::Indeterminate`] | read back, or retry only idempotent requests | 503 / UNAVAILABLE |
//! | [`Error::Io`] | an operator must look | 500 / INTERNAL |
//!
//! The store's errors cross the quorum inside command responses, so [`Error`] is serde.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the control plane, by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// The request is malformed; nothing was changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The resource does not exist, or belongs to another tenant (indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(String),
    /// The request contradicts the current state; nothing was changed.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// A per-tenant limit ([`crate::model::limits`]) would be exceeded; nothing was changed.
    /// The message names the limit and its value.
    #[error("limit reached: {0}")]
    ResourceExhausted(String),
    /// The store cannot serve the request now (no quorum leader, a full queue). Nothing was
    /// changed; retrying is safe.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The change was submitted but its outcome is unknown (leadership changed, a timeout). It
    /// may still take effect; read back, or retry if the request is idempotent.
    #[error("the outcome is unknown: {0}")]
    Indeterminate(String),
    /// A disk failure or corrupt data underneath the store.
    #[error("storage failed: {0}")]
    Io(String),
}

/// Why a request conflicts with the current state: each is a reason a program can branch on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Conflict {
    /// The tenant already has a cluster (or a configuration) with this name.
    #[error("the tenant already has a {kind} named {name:?} ({cluster_id})")]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The cluster (or configuration) that has it.
        cluster_id: String,
        /// What has it: `cluster` or `configuration`.
        #[serde(default = "cluster_kind")]
        kind: String,
    },
    /// The `client_request_id` was already used for a create with a different spec.
    #[error("client_request_id {client_request_id:?} was already used with a different spec")]
    RequestIdReused {
        /// The reused id.
        client_request_id: String,
    },
    /// Another operation is running on the cluster (one at a time).
    #[error("operation {operation_id} is still running on the cluster")]
    OperationInProgress {
        /// The running operation.
        operation_id: String,
    },
    /// The resource changed since the caller read it (optimistic concurrency).
    #[error("expected version {expected}, but the current version is {current}")]
    VersionMismatch {
        /// The version the caller passed.
        expected: u64,
        /// The version stored.
        current: u64,
    },
    /// The configuration is referenced by clusters, so it cannot be deleted.
    #[error(
        "configuration {configuration_id} is in use by clusters {}; point them at another \
         configuration or delete them first",
        cluster_ids.join(", ")
    )]
    ConfigurationInUse {
        /// The configuration.
        configuration_id: String,
        /// The clusters referencing it (desired or running), sorted.
        cluster_ids: Vec<String>,
    },
    /// The request is not allowed in the resource's current state (e.g. updating an operation
    /// that already ended, removing a cluster that is not being deleted).
    #[error("{0}")]
    WrongState(String),
}

fn cluster_kind() -> String {
    "cluster".into()
}

impl Error {
    /// Whether retrying the same request is safe and may succeed: nothing was changed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

impl From<Conflict> for Error {
    fn from(conflict: Conflict) -> Self {
        Error::Conflict(conflict)
    }
}

impl From<ferry_quorum::Error> for Error {
    /// Maps quorum errors to categories: not-applied ones become [`Error::Unavailable`],
    /// maybe-applied ones [`Error::Indeterminate`].
    fn from(err: ferry_quorum::Error) -> Self {
        use ferry_quorum::Error as Q;
        match err {
            Q::NotLeader { .. } | Q::Unavailable(_) => Error::Unavailable(err.to_string()),
            Q::Indeterminate(_) | Q::Stopped => Error::Indeterminate(err.to_string()),
            Q::InvalidInput(msg) => Error::InvalidInput(msg),
            Q::Io(_) | Q::Corrupt(_) => Error::Io(err.to_string()),
        }
    }
}
