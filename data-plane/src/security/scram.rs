//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): credentials and the server side
//! of one exchange, sans-IO.
//!
//! A client proves it knows a user's password without sending it; the broker keeps only a
//! [`ScramCredential`] (salt, StoredKey, ServerKey, iterations), never the password nor the
//! salted password. The connection loop feeds the client's two messages to one
//! [`ScramServer`] and gets back the bytes to answer and, at the end, the verified
//! [`Principal`]:
//!
//! ```text
//! client-first   n,[a=<authzid>],n=<user>,r=<cnonce>[,<ext>=<value>...]
//! server-first   r=<cnonce><snonce>,s=<base64 salt>,i=<iterations>
//! client-final   c=<base64 gs2 header>,r=<cnonce><snonce>[,<ext>=<value>...],p=<base64 proof>
//! server-final   v=<base64 ServerSignature>
//!
//! SaltedPassword  = PBKDF2-HMAC-H(password, salt, iterations)
//! ClientKey       = HMAC(SaltedPassword, "Client Key")      StoredKey = H(ClientKey)
//! ServerKey       = HMAC(SaltedPassword, "Server Key")
//! AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
//! ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
//! ServerSignature = HMAC(ServerKey, AuthMessage)
//! ```
//!
//! The server checks a proof by recovering ClientKey (`proof XOR HMAC(StoredKey, AuthMessage)`)
//! and comparing `H(ClientKey)` with StoredKey in constant time. AuthMessage is built from the
//! bytes the client actually sent, never from a reconstruction.
//!
//! # Differences from RFC 5802 and from Kafka
//! - Only the gs2 flag `n` (no channel binding) is accepted, as Kafka does: `p=` (the client
//!   requires binding) and `y` (the client could bind but thinks the server cannot) are refused.
//!   Ferry never offers the `-PLUS` mechanisms, so refusing `y` loses no real client (Java,
//!   librdkafka, kafkajs and kafka-python all send `n,,`).
//! - Kafka does not compare `c=` with the gs2 header; Ferry does (RFC 5802 section 5.1).
//! - A reserved `m=` attribute fails the exchange (RFC 5802 "MUST"), Kafka ignores it.
//! - Extensions (`key=value` with an alphabetic key) are accepted and ignored, as Kafka does,
//!   except `tokenauth=true`: it asks for delegation-token authentication, which Ferry does not
//!   have, so it is refused rather than silently checked as a user password.
//! - The final nonce must be the full nonce, or the client nonce followed by the full nonce:
//!   librdkafka before 2.6.1 repeats its nonce (librdkafka PR #4895), and kcat on many
//!   distributions links such a version. Kafka 4 accepts only the first form. The second is
//!   safe: the proof is an HMAC over AuthMessage, which holds the fresh server nonce.
//! - No SASLprep: user names and passwords are compared as UTF-8 bytes, as Kafka does.
//! - Unknown users get a mock exchange: a server-first with a salt derived from a per-process
//!   key and the user name (stable across attempts), [`MOCK_ITERATIONS`], and a failure at
//!   `finish` with the same error as a wrong password. Caveat: the key is per process, so two
//!   brokers give two different salts for a user that does not exist (Kafka reveals it
//!   outright); and a real credential with another salt length or iteration count than the mock
//!   one is told apart by its shape, so credentials should be made with [`MOCK_SALT_BYTES`] and
//!   [`MOCK_ITERATIONS`].

use std::fmt;
use std::num::NonZeroU32;

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::Principal;

/// The fewest PBKDF2 iterations a credential may have (Kafka's minimum, RFC 7677's advice).
pub const ITERATIONS_MIN: u32 = 4096;
/// The most PBKDF2 iterations a credential may have (Kafka's maximum): PLAIN and credential
/// creation run PBKDF2 on the broker, so this bounds the CPU one attempt costs.
pub const ITERATIONS_MAX: u32 = 16384;
/// The shortest salt accepted, in bytes (the RFC 7677 test vector's salt is 16 bytes).
pub const SALT_MIN_BYTES: usize = 16;
/// The longest salt accepted, in bytes.
pub const SALT_MAX_BYTES: usize = 1024;
/// The longest user name, in UTF-8 bytes after unescaping.
pub const USER_NAME_MAX_BYTES: usize = 256;
/// The largest client-first or client-final message accepted, in bytes. A user name of the
/// maximum length, fully escaped, is 768 bytes; nonces and proofs are well under 200.
pub const CLIENT_MESSAGE_MAX_BYTES: usize = 2048;
/// The longest client nonce accepted, in bytes (librdkafka sends 32, Java 26).
pub const CLIENT_NONCE_MAX_BYTES: usize = 256;
/// The shortest server nonce the caller may pass, in printable bytes.
pub const SERVER_NONCE_MIN_BYTES: usize = 16;
/// The longest server nonce the caller may pass, in printable bytes.
pub const SERVER_NONCE_MAX_BYTES: usize = 128;
/// The salt length of the mock credential answered for unknown users; real credentials should
/// use the same length so the two cannot be told apart.
pub const MOCK_SALT_BYTES: usize = 32;
/// The iteration count of the mock credential answered for unknown users.
pub const MOCK_ITERATIONS: u32 = ITERATIONS_MIN;

const _: () = assert!(ITERATIONS_MIN <= ITERATIONS_MAX);
const _: () = assert!(SALT_MIN_BYTES <= MOCK_SALT_BYTES && MOCK_SALT_BYTES <= SALT_MAX_BYTES);
const _: () = assert!(ITERATIONS_MIN <= MOCK_ITERATIONS && MOCK_ITERATIONS <= ITERATIONS_MAX);
const _: () = assert!(SERVER_NONCE_MIN_BYTES <= SERVER_NONCE_MAX_BYTES);

/// A SCRAM hash, with Kafka's mechanism name and its code in credential records and the
/// `*UserScramCredentials` APIs.
///
/// Serialized (in metadata records and snapshots) by its SASL name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`, code 1.
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// `SCRAM-SHA-512`, code 2.
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// Both mechanisms, strongest first.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha512, ScramMechanism::Sha256];

    /// The SASL mechanism name, as in SaslHandshake and `sasl.enabled.mechanisms`.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Kafka's code (`ScramMechanism` in the admin client; 0 is UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism with this SASL name (exact, as Kafka compares them).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The mechanism with this Kafka code; `None` for UNKNOWN (0) and anything else.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The length of the hash's output, hence of every key and proof, in bytes.
    pub fn digest_bytes(self) -> usize {
        self.digest().output_len()
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a credential, its inputs or a user name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Fewer iterations than [`ITERATIONS_MIN`].
    #[error("{0} iterations is too few, the minimum is {ITERATIONS_MIN}")]
    IterationsTooFew(u32),
    /// More iterations than [`ITERATIONS_MAX`].
    #[error("{0} iterations is too many, the maximum is {ITERATIONS_MAX}")]
    IterationsTooMany(u32),
    /// A salt shorter than [`SALT_MIN_BYTES`].
    #[error("the salt is {0} bytes, shorter than {SALT_MIN_BYTES}")]
    SaltTooShort(usize),
    /// A salt longer than [`SALT_MAX_BYTES`].
    #[error("the salt is {0} bytes, longer than {SALT_MAX_BYTES}")]
    SaltTooLong(usize),
    /// A salted password, StoredKey or ServerKey whose length is not the hash's output length
    /// (Kafka accepts any length for a salted password; Ferry does not).
    #[error("a {mechanism} key must be {expected} bytes, this one is {len}")]
    KeyLength {
        /// The mechanism the key is for.
        mechanism: ScramMechanism,
        /// The length given.
        len: usize,
        /// The hash's output length.
        expected: usize,
    },
    /// An empty user name.
    #[error("the user name is empty")]
    UserNameEmpty,
    /// A user name longer than [`USER_NAME_MAX_BYTES`].
    #[error("the user name is {0} bytes, longer than {USER_NAME_MAX_BYTES}")]
    UserNameTooLong(usize),
}

/// Checks a SCRAM user name's length: 1 to [`USER_NAME_MAX_BYTES`] UTF-8 bytes.
pub fn validate_user_name(name: &str) -> Result<(), CredentialError> {
    if name.is_empty() {
        return Err(CredentialError::UserNameEmpty);
    }
    if name.len() > USER_NAME_MAX_BYTES {
        return Err(CredentialError::UserNameTooLong(name.len()));
    }
    Ok(())
}

fn validate_iterations(iterations: u32) -> Result<(), CredentialError> {
    if iterations < ITERATIONS_MIN {
        return Err(CredentialError::IterationsTooFew(iterations));
    }
    if iterations > ITERATIONS_MAX {
        return Err(CredentialError::IterationsTooMany(iterations));
    }
    Ok(())
}

fn validate_salt(salt: &[u8]) -> Result<(), CredentialError> {
    if salt.len() < SALT_MIN_BYTES {
        return Err(CredentialError::SaltTooShort(salt.len()));
    }
    if salt.len() > SALT_MAX_BYTES {
        return Err(CredentialError::SaltTooLong(salt.len()));
    }
    Ok(())
}

fn validate_key(mechanism: ScramMechanism, key: &[u8]) -> Result<(), CredentialError> {
    if key.len() != mechanism.digest_bytes() {
        return Err(CredentialError::KeyLength {
            mechanism,
            len: key.len(),
            expected: mechanism.digest_bytes(),
        });
    }
    Ok(())
}

/// `PBKDF2-HMAC-H(password, salt, iterations)`: what a client computes from a password, and
/// what AlterUserScramCredentials carries. Password-equivalent: never stored, logged or put in
/// the metadata log; its `Debug` prints nothing of it.
#[derive(Clone)]
pub struct SaltedPassword(Vec<u8>);

impl SaltedPassword {
    /// The bytes, as long as the mechanism's hash output.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SaltedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaltedPassword(<redacted>)")
    }
}

/// Runs PBKDF2 over a password (UTF-8 bytes, no SASLprep, as Kafka does). The salt and the
/// iteration count are checked against their bounds first, so a request cannot make the broker
/// spend more than [`ITERATIONS_MAX`] rounds. This costs milliseconds of CPU: callers on the
/// async runtime run it on a blocking thread.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<SaltedPassword, CredentialError> {
    validate_salt(salt)?;
    validate_iterations(iterations)?;
    let rounds = NonZeroU32::new(iterations).expect("iterations were checked to be at least 4096");
    let mut out = vec![0u8; mechanism.digest_bytes()];
    pbkdf2::derive(mechanism.pbkdf2(), rounds, salt, password, &mut out);
    Ok(SaltedPassword(out))
}

/// What the broker stores for one (user, mechanism): enough to check a proof and to sign the
/// server-final, nothing that lets anyone log in. Every value is checked on construction, so a
/// credential in hand is always within the bounds. `Debug` shows the shape, not the keys.
#[derive(Clone)]
pub struct ScramCredential {
    mechanism: ScramMechanism,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    iterations: u32,
}

impl ScramCredential {
    /// A credential from stored parts (a metadata record), checked against the bounds.
    pub fn from_parts(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
        iterations: u32,
    ) -> Result<Self, CredentialError> {
        validate_salt(&salt)?;
        validate_iterations(iterations)?;
        validate_key(mechanism, &stored_key)?;
        validate_key(mechanism, &server_key)?;
        Ok(Self {
            mechanism,
            salt,
            stored_key,
            server_key,
            iterations,
        })
    }

    /// Derives StoredKey and ServerKey from a salted password (AlterUserScramCredentials'
    /// upsertion, or [`salted_password`]). The salted password must be exactly the hash's
    /// output length.
    pub fn derive(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, CredentialError> {
        validate_key(mechanism, salted_password)?;
        let (stored_key, server_key) = keys_from_salted_password(mechanism, salted_password);
        Self::from_parts(mechanism, salt.to_vec(), stored_key, server_key, iterations)
    }

    /// The mechanism this credential is for.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The salt sent to clients in server-first.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// `H(ClientKey)`.
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    /// `HMAC(SaltedPassword, "Server Key")`.
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("salt_bytes", &self.salt.len())
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .field("iterations", &self.iterations)
            .finish()
    }
}

/// `(StoredKey, ServerKey)` from a salted password.
fn keys_from_salted_password(mechanism: ScramMechanism, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let key = hmac::Key::new(mechanism.hmac(), salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(mechanism.digest(), client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    (stored_key.as_ref().to_vec(), server_key.as_ref().to_vec())
}

/// Whether `password` is the one `credential` was made from: PBKDF2 over it with the stored
/// salt and iterations, then `H(ClientKey)` compared with StoredKey in constant time. Used by
/// SASL/PLAIN; it costs a full PBKDF2.
pub(crate) fn password_matches(credential: &ScramCredential, password: &[u8]) -> bool {
    let Ok(salted) = salted_password(
        credential.mechanism,
        password,
        &credential.salt,
        credential.iterations,
    ) else {
        // A credential in hand is within the bounds, so this does not happen; refusing is the
        // safe answer if it ever did.
        return false;
    };
    let (stored_key, _) = keys_from_salted_password(credential.mechanism, salted.as_bytes());
    constant_time::verify_slices_are_equal(&stored_key, &credential.stored_key).is_ok()
}

/// The per-process secret from which unknown users' mock salts are derived. It is made once at
/// start from random bytes the caller supplies, and shared by every exchange. `Debug` redacts it.
#[derive(Clone)]
pub struct MockSaltKey([u8; 32]);

impl MockSaltKey {
    /// A key from 32 random bytes.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The mock credential of `user` for `mechanism`: the same salt on every attempt, keys no
    /// password derives (in practice), and [`MOCK_ITERATIONS`].
    pub(crate) fn mock_credential(&self, mechanism: ScramMechanism, user: &str) -> ScramCredential {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let labelled = |label: &str| {
            let mut ctx = hmac::Context::with_key(&key);
            ctx.update(label.as_bytes());
            ctx.update(&[0]);
            ctx.update(mechanism.name().as_bytes());
            ctx.update(&[0]);
            ctx.update(user.as_bytes());
            ctx.sign()
        };
        let salt = labelled("salt").as_ref()[..MOCK_SALT_BYTES].to_vec();
        let (stored_key, server_key) = keys_from_salted_password(
            mechanism,
            &expand(labelled("keys").as_ref(), mechanism.digest_bytes()),
        );
        ScramCredential::from_parts(mechanism, salt, stored_key, server_key, MOCK_ITERATIONS)
            .expect("the mock credential is built within the bounds")
    }
}

impl fmt::Debug for MockSaltKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MockSaltKey(<redacted>)")
    }
}

/// `seed` repeated to `len` bytes (a stand-in salted password for the mock credential; its
/// value only has to be unknown to clients).
fn expand(seed: &[u8], len: usize) -> Vec<u8> {
    seed.iter().copied().cycle().take(len).collect()
}

/// Encodes random bytes from the caller as a printable server nonce (base64url, no padding):
/// 18 random bytes give 24 characters.
pub fn encode_server_nonce(random: &[u8]) -> Vec<u8> {
    URL_SAFE_NO_PAD.encode(random).into_bytes()
}

/// Why a SCRAM exchange failed. The connection layer answers every one of them with the same
/// SASL_AUTHENTICATION_FAILED message; the variants are for logs and tests. No variant carries
/// a secret or a byte of the client's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A client message longer than [`CLIENT_MESSAGE_MAX_BYTES`].
    #[error("the SCRAM message is {0} bytes, longer than {CLIENT_MESSAGE_MAX_BYTES}")]
    MessageTooLarge(usize),
    /// A client message that is not UTF-8.
    #[error("the SCRAM message is not UTF-8")]
    NotUtf8,
    /// The gs2 header asks for channel binding (`p=`), which Ferry does not offer.
    #[error("channel binding is not supported (gs2 flag 'p')")]
    ChannelBindingUnsupported,
    /// The gs2 flag is `y`, or anything but `n`; Kafka accepts only `n`.
    #[error("the gs2 header must start with 'n,' (no channel binding)")]
    Gs2FlagUnsupported,
    /// The gs2 header or the message's attributes are not laid out as RFC 5802 says.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// A required attribute is missing or out of its place.
    #[error("the SCRAM message lacks its '{0}=' attribute where expected")]
    MissingAttribute(&'static str),
    /// The reserved `m=` attribute, which a server must refuse.
    #[error("the reserved SCRAM attribute 'm=' is not supported")]
    ReservedAttribute,
    /// `n=` is empty.
    #[error("the SCRAM user name is empty")]
    UserNameEmpty,
    /// The user name is longer than [`USER_NAME_MAX_BYTES`] once unescaped.
    #[error("the SCRAM user name is {0} bytes, longer than {USER_NAME_MAX_BYTES}")]
    UserNameTooLong(usize),
    /// A `=` in a user name or authzid not followed by `2C` or `3D`, or a NUL byte.
    #[error("the SCRAM user name has an invalid escape ('=' must be '=2C' or '=3D')")]
    UserNameEscape,
    /// An authzid (`a=`) that is not the user name.
    #[error("the authorization id must be empty or equal to the user name")]
    AuthzidMismatch,
    /// An extension that is not `key=value` with an alphabetic key and a non-empty value.
    #[error("malformed SCRAM extension")]
    ExtensionInvalid,
    /// `tokenauth=true`: delegation-token authentication, which Ferry does not have.
    #[error("delegation-token authentication (tokenauth) is not supported")]
    DelegationTokenUnsupported,
    /// The client nonce is empty.
    #[error("the client nonce is empty")]
    NonceEmpty,
    /// The client nonce has a byte outside `0x21..=0x7E`, or a comma.
    #[error("the client nonce has a non-printable character")]
    NonceNotPrintable,
    /// The client nonce is longer than [`CLIENT_NONCE_MAX_BYTES`].
    #[error("the client nonce is {0} bytes, longer than {CLIENT_NONCE_MAX_BYTES}")]
    NonceTooLong(usize),
    /// The nonce in client-final is neither the full nonce nor the client nonce followed by it.
    #[error("the client-final nonce does not match this exchange")]
    NonceMismatch,
    /// `c=` is not the base64 of the gs2 header the client sent in client-first.
    #[error("the channel binding in client-final does not match the gs2 header")]
    ChannelBindingMismatch,
    /// The proof is not base64.
    #[error("the client proof is not base64")]
    ProofNotBase64,
    /// The proof is not as long as the hash's output.
    #[error("the client proof is {len} bytes, a {mechanism} proof is {expected}")]
    ProofLength {
        /// The mechanism of the exchange.
        mechanism: ScramMechanism,
        /// The decoded length.
        len: usize,
        /// The hash's output length.
        expected: usize,
    },
    /// A wrong proof, or a user that does not exist: the same error for both, on purpose.
    #[error("authentication failed: invalid credentials")]
    AuthenticationFailed,
    /// The credential the lookup returned is for another mechanism (a bug in the caller).
    #[error("the stored credential is for {found}, the exchange is {expected}")]
    CredentialMechanismMismatch {
        /// The exchange's mechanism.
        expected: ScramMechanism,
        /// The credential's mechanism.
        found: ScramMechanism,
    },
    /// The server nonce the caller passed is not [`SERVER_NONCE_MIN_BYTES`] to
    /// [`SERVER_NONCE_MAX_BYTES`] printable bytes without a comma (a bug in the caller).
    #[error(
        "the server nonce must be {SERVER_NONCE_MIN_BYTES} to {SERVER_NONCE_MAX_BYTES} printable bytes"
    )]
    ServerNonceInvalid,
    /// `first` or `finish` called out of order, or again after the exchange ended.
    #[error("SCRAM step out of order: expected {expected}")]
    OutOfOrder {
        /// What the exchange was waiting for.
        expected: &'static str,
    },
}

/// Where one exchange stands.
enum Step {
    /// Nothing received yet.
    AwaitingClientFirst,
    /// server-first sent; waiting for client-final.
    AwaitingClientFinal(Box<Pending>),
    /// Succeeded or failed; a new exchange needs a new server.
    Ended,
}

/// What `first` keeps for `finish`.
struct Pending {
    /// The unescaped user name.
    user: String,
    /// The user's credential, or the mock one.
    credential: ScramCredential,
    /// False when `credential` is the mock one: `finish` then fails whatever the proof.
    known_user: bool,
    /// The gs2 header exactly as sent (`n,,` or `n,a=<authzid>,`).
    gs2_header: String,
    /// The client nonce.
    client_nonce: String,
    /// Client nonce followed by server nonce.
    full_nonce: String,
    /// client-first without the gs2 header, as sent.
    client_first_bare: String,
    /// server-first as sent.
    server_first: String,
}

/// The server side of one SCRAM exchange. Make one per SaslHandshake (and per
/// re-authentication); it refuses to be used twice.
///
/// Expected flow: [`ScramServer::first`] with client-first answers server-first;
/// [`ScramServer::finish`] with client-final answers the principal and server-final. Any error
/// ends the exchange: later calls answer [`ScramError::OutOfOrder`]. Only `finish` returning
/// `Ok` means the client proved the password.
pub struct ScramServer {
    mechanism: ScramMechanism,
    mock_key: MockSaltKey,
    step: Step,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match &self.step {
            Step::AwaitingClientFirst => "awaiting client-first",
            Step::AwaitingClientFinal(_) => "awaiting client-final",
            Step::Ended => "ended",
        };
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("step", &step)
            .finish()
    }
}

impl ScramServer {
    /// A new exchange for `mechanism`. `mock_key` is the process's [`MockSaltKey`].
    pub fn new(mechanism: ScramMechanism, mock_key: MockSaltKey) -> Self {
        Self {
            mechanism,
            mock_key,
            step: Step::AwaitingClientFirst,
        }
    }

    /// The exchange's mechanism.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Takes client-first and answers server-first. `lookup` gives the credential of a user
    /// name for this mechanism; `server_nonce` is fresh randomness, already printable (see
    /// [`encode_server_nonce`]).
    pub fn first(
        &mut self,
        client_first: &[u8],
        lookup: impl Fn(&str) -> Option<ScramCredential>,
        server_nonce: &[u8],
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.step, Step::AwaitingClientFirst) {
            return Err(ScramError::OutOfOrder {
                expected: self.expected(),
            });
        }
        // Whatever happens next, this exchange cannot take a client-first again.
        self.step = Step::Ended;
        let server_nonce = check_server_nonce(server_nonce)?;
        let parsed = ClientFirst::parse(client_first)?;
        let (credential, known_user) = match lookup(&parsed.user) {
            Some(credential) if credential.mechanism != self.mechanism => {
                return Err(ScramError::CredentialMechanismMismatch {
                    expected: self.mechanism,
                    found: credential.mechanism,
                });
            }
            Some(credential) => (credential, true),
            None => (
                self.mock_key.mock_credential(self.mechanism, &parsed.user),
                false,
            ),
        };
        let full_nonce = format!("{}{}", parsed.nonce, server_nonce);
        let server_first = format!(
            "r={full_nonce},s={},i={}",
            STANDARD.encode(&credential.salt),
            credential.iterations
        );
        let answer = server_first.clone().into_bytes();
        self.step = Step::AwaitingClientFinal(Box::new(Pending {
            user: parsed.user,
            credential,
            known_user,
            gs2_header: parsed.gs2_header.to_string(),
            client_nonce: parsed.nonce.to_string(),
            full_nonce,
            client_first_bare: parsed.bare.to_string(),
            server_first,
        }));
        Ok(answer)
    }

    /// Takes client-final and, when the proof is right, answers the authenticated principal
    /// (`User:<name>`) and server-final.
    pub fn finish(&mut self, client_final: &[u8]) -> Result<(Principal, Vec<u8>), ScramError> {
        let pending = match std::mem::replace(&mut self.step, Step::Ended) {
            Step::AwaitingClientFinal(pending) => pending,
            other => {
                self.step = other;
                return Err(ScramError::OutOfOrder {
                    expected: self.expected(),
                });
            }
        };
        let parsed = ClientFinal::parse(client_final, self.mechanism)?;
        let channel_binding = STANDARD
            .decode(parsed.channel_binding)
            .map_err(|_| ScramError::ChannelBindingMismatch)?;
        if channel_binding != pending.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if !nonce_is_accepted(parsed.nonce, &pending.client_nonce, &pending.full_nonce) {
            return Err(ScramError::NonceMismatch);
        }
        let auth_message = format!(
            "{},{},{}",
            pending.client_first_bare, pending.server_first, parsed.without_proof
        );
        let credential = &pending.credential;
        let mechanism = self.mechanism;
        let stored = hmac::Key::new(mechanism.hmac(), &credential.stored_key);
        let client_signature = hmac::sign(&stored, auth_message.as_bytes());
        let client_key: Vec<u8> = parsed
            .proof
            .iter()
            .zip(client_signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        let recovered = digest::digest(mechanism.digest(), &client_key);
        let proof_ok =
            constant_time::verify_slices_are_equal(recovered.as_ref(), &credential.stored_key)
                .is_ok();
        // Unknown users ran the same steps against the mock credential; they fail here, with
        // the wrong password's error.
        if !(proof_ok && pending.known_user) {
            return Err(ScramError::AuthenticationFailed);
        }
        let server = hmac::Key::new(mechanism.hmac(), &credential.server_key);
        let signature = hmac::sign(&server, auth_message.as_bytes());
        let server_final = format!("v={}", STANDARD.encode(signature.as_ref()));
        Ok((Principal::user(pending.user), server_final.into_bytes()))
    }

    fn expected(&self) -> &'static str {
        match self.step {
            Step::AwaitingClientFirst => "client-first",
            Step::AwaitingClientFinal(_) => "client-final",
            Step::Ended => "nothing: the exchange has ended",
        }
    }
}

/// The final nonce forms accepted: the full nonce (RFC 5802), or the client nonce followed by
/// the full nonce (librdkafka < 2.6.1). Nothing else.
fn nonce_is_accepted(received: &str, client_nonce: &str, full_nonce: &str) -> bool {
    if received == full_nonce {
        return true;
    }
    received
        .strip_prefix(client_nonce)
        .is_some_and(|rest| rest == full_nonce)
}

fn check_server_nonce(nonce: &[u8]) -> Result<&str, ScramError> {
    let in_bounds = (SERVER_NONCE_MIN_BYTES..=SERVER_NONCE_MAX_BYTES).contains(&nonce.len());
    if !in_bounds || !nonce.iter().all(|&b| is_printable(b)) {
        return Err(ScramError::ServerNonceInvalid);
    }
    Ok(std::str::from_utf8(nonce).expect("printable ASCII is UTF-8"))
}

/// RFC 5802 `printable`: `%x21-2B / %x2D-7E` (visible ASCII but the comma).
fn is_printable(byte: u8) -> bool {
    (0x21..=0x7e).contains(&byte) && byte != b','
}

fn check_message(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > CLIENT_MESSAGE_MAX_BYTES {
        return Err(ScramError::MessageTooLarge(message.len()));
    }
    std::str::from_utf8(message).map_err(|_| ScramError::NotUtf8)
}

/// client-first, split.
struct ClientFirst<'a> {
    /// `n,,` or `n,a=<authzid>,`, as sent.
    gs2_header: &'a str,
    /// Everything after the gs2 header, as sent.
    bare: &'a str,
    /// The unescaped user name.
    user: String,
    /// The client nonce.
    nonce: &'a str,
}

impl<'a> ClientFirst<'a> {
    fn parse(message: &'a [u8]) -> Result<Self, ScramError> {
        let text = check_message(message)?;
        let after_flag = if let Some(rest) = text.strip_prefix("n,") {
            rest
        } else if text.starts_with("p=") {
            return Err(ScramError::ChannelBindingUnsupported);
        } else {
            return Err(ScramError::Gs2FlagUnsupported);
        };
        let Some((authzid, bare)) = after_flag.split_once(',') else {
            return Err(ScramError::Malformed("the gs2 header has no second comma"));
        };
        let gs2_header = &text[..text.len() - bare.len()];
        let authzid = match authzid {
            "" => None,
            _ => match authzid.strip_prefix("a=") {
                Some("") => return Err(ScramError::Malformed("empty authorization id")),
                Some(escaped) => Some(unescape_name(escaped)?),
                None => return Err(ScramError::Malformed("the gs2 header has an unknown field")),
            },
        };
        let mut attributes = bare.split(',');
        let mut first = attributes.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(ScramError::ReservedAttribute);
        }
        let Some(escaped_user) = first.strip_prefix("n=") else {
            return Err(ScramError::MissingAttribute("n"));
        };
        if escaped_user.is_empty() {
            return Err(ScramError::UserNameEmpty);
        }
        let user = unescape_name(escaped_user)?;
        if user.len() > USER_NAME_MAX_BYTES {
            return Err(ScramError::UserNameTooLong(user.len()));
        }
        if authzid.is_some_and(|authzid| authzid != user) {
            return Err(ScramError::AuthzidMismatch);
        }
        first = attributes.next().unwrap_or_default();
        let Some(nonce) = first.strip_prefix("r=") else {
            return Err(ScramError::MissingAttribute("r"));
        };
        check_client_nonce(nonce)?;
        check_extensions(attributes)?;
        Ok(Self {
            gs2_header,
            bare,
            user,
            nonce,
        })
    }
}

/// client-final, split.
struct ClientFinal<'a> {
    /// The `c=` value (base64).
    channel_binding: &'a str,
    /// The `r=` value.
    nonce: &'a str,
    /// The message up to, not including, `,p=`.
    without_proof: &'a str,
    /// The decoded proof, as long as the hash's output.
    proof: Vec<u8>,
}

impl<'a> ClientFinal<'a> {
    fn parse(message: &'a [u8], mechanism: ScramMechanism) -> Result<Self, ScramError> {
        let text = check_message(message)?;
        // The proof is the last attribute (RFC 5802 section 7).
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return Err(ScramError::MissingAttribute("p"));
        };
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::ProofNotBase64)?;
        if proof.len() != mechanism.digest_bytes() {
            return Err(ScramError::ProofLength {
                mechanism,
                len: proof.len(),
                expected: mechanism.digest_bytes(),
            });
        }
        let mut attributes = without_proof.split(',');
        let Some(channel_binding) = attributes.next().unwrap_or_default().strip_prefix("c=") else {
            return Err(ScramError::MissingAttribute("c"));
        };
        let Some(nonce) = attributes.next().unwrap_or_default().strip_prefix("r=") else {
            return Err(ScramError::MissingAttribute("r"));
        };
        check_extensions(attributes)?;
        Ok(Self {
            channel_binding,
            nonce,
            without_proof,
            proof,
        })
    }
}

fn check_client_nonce(nonce: &str) -> Result<(), ScramError> {
    if nonce.is_empty() {
        return Err(ScramError::NonceEmpty);
    }
    if nonce.len() > CLIENT_NONCE_MAX_BYTES {
        return Err(ScramError::NonceTooLong(nonce.len()));
    }
    if !nonce.bytes().all(is_printable) {
        return Err(ScramError::NonceNotPrintable);
    }
    Ok(())
}

/// Extensions after the nonce: `key=value`, the key alphabetic, the value non-empty. They are
/// ignored, except `tokenauth=true` (Kafka compares the value case-insensitively).
fn check_extensions<'a>(extensions: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for extension in extensions {
        let Some((key, value)) = extension.split_once('=') else {
            return Err(ScramError::ExtensionInvalid);
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) || value.is_empty() {
            return Err(ScramError::ExtensionInvalid);
        }
        if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
            return Err(ScramError::DelegationTokenUnsupported);
        }
    }
    Ok(())
}

/// A saslname unescaped: `=2C` is `,`, `=3D` is `=`, any other `=` and any NUL are refused.
fn unescape_name(escaped: &str) -> Result<String, ScramError> {
    let mut name = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find(['=', '\0']) {
        name.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("=2C") {
            name.push(',');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("=3D") {
            name.push('=');
            rest = after;
        } else {
            return Err(ScramError::UserNameEscape);
        }
    }
    name.push_str(rest);
    Ok(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The process key of these tests.
    pub(crate) fn mock_key() -> MockSaltKey {
        MockSaltKey::from_random([7; 32])
    }

    /// A 24-character printable server nonce from a seed byte.
    fn server_nonce(seed: u8) -> Vec<u8> {
        encode_server_nonce(&[seed; 18])
    }

    /// A credential made the way the control plane will: PBKDF2 over the password.
    pub(crate) fn credential(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let salted = salted_password(mechanism, password.as_bytes(), salt, iterations).unwrap();
        ScramCredential::derive(mechanism, salted.as_bytes(), salt, iterations).unwrap()
    }

    /// How the test client writes the nonce in client-final.
    #[derive(Clone, Copy)]
    enum FinalNonce {
        /// The full nonce (RFC 5802).
        Full,
        /// Client nonce + full nonce (librdkafka < 2.6.1).
        Doubled,
        /// Full nonce + client nonce: no client does this.
        Appended,
    }

    /// A SCRAM client for round trips, written from RFC 5802 (also drives the session's
    /// golden scripts).
    pub(crate) struct Client {
        mechanism: ScramMechanism,
        user: String,
        password: String,
        nonce: String,
        final_nonce: FinalNonce,
        /// client-first-bare, kept for AuthMessage.
        bare: String,
        /// The ServerSignature the client expects, once client-final is built.
        expected_server_final: Option<String>,
    }

    impl Client {
        pub(crate) fn new(
            mechanism: ScramMechanism,
            user: &str,
            password: &str,
            nonce: &str,
        ) -> Self {
            Self {
                mechanism,
                user: user.to_string(),
                password: password.to_string(),
                nonce: nonce.to_string(),
                final_nonce: FinalNonce::Full,
                bare: String::new(),
                expected_server_final: None,
            }
        }

        pub(crate) fn first(&mut self) -> Vec<u8> {
            let escaped = self.user.replace('=', "=3D").replace(',', "=2C");
            self.bare = format!("n={escaped},r={}", self.nonce);
            format!("n,,{}", self.bare).into_bytes()
        }

        pub(crate) fn final_message(&mut self, server_first: &[u8]) -> Vec<u8> {
            let server_first = std::str::from_utf8(server_first).unwrap();
            let mut full_nonce = "";
            let mut salt = Vec::new();
            let mut iterations = 0;
            for attribute in server_first.split(',') {
                let (key, value) = attribute.split_once('=').unwrap();
                match key {
                    "r" => full_nonce = value,
                    "s" => salt = STANDARD.decode(value).unwrap(),
                    "i" => iterations = value.parse().unwrap(),
                    other => panic!("unexpected server-first attribute {other}"),
                }
            }
            assert!(
                full_nonce.starts_with(&self.nonce),
                "server nonce extends ours"
            );
            let nonce = match self.final_nonce {
                FinalNonce::Full => full_nonce.to_string(),
                FinalNonce::Doubled => format!("{}{full_nonce}", self.nonce),
                FinalNonce::Appended => format!("{full_nonce}{}", self.nonce),
            };
            let without_proof = format!("c=biws,r={nonce}");
            let auth_message = format!("{},{server_first},{without_proof}", self.bare);
            let mechanism = self.mechanism;
            let salted =
                salted_password(mechanism, self.password.as_bytes(), &salt, iterations).unwrap();
            let key = hmac::Key::new(mechanism.hmac(), salted.as_bytes());
            let client_key = hmac::sign(&key, b"Client Key");
            let stored_key = digest::digest(mechanism.digest(), client_key.as_ref());
            let stored = hmac::Key::new(mechanism.hmac(), stored_key.as_ref());
            let signature = hmac::sign(&stored, auth_message.as_bytes());
            let proof: Vec<u8> = client_key
                .as_ref()
                .iter()
                .zip(signature.as_ref())
                .map(|(k, s)| k ^ s)
                .collect();
            let server_key = hmac::sign(&key, b"Server Key");
            let server = hmac::Key::new(mechanism.hmac(), server_key.as_ref());
            let server_signature = hmac::sign(&server, auth_message.as_bytes());
            self.expected_server_final =
                Some(format!("v={}", STANDARD.encode(server_signature.as_ref())));
            format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes()
        }
    }

    /// Runs a whole exchange of `client` against a server knowing `users`.
    fn exchange(
        client: &mut Client,
        users: &[(&str, ScramCredential)],
        nonce_seed: u8,
    ) -> Result<Principal, ScramError> {
        let mut server = ScramServer::new(client.mechanism, mock_key());
        let lookup = |name: &str| {
            users
                .iter()
                .find(|(user, _)| *user == name)
                .map(|(_, credential)| credential.clone())
        };
        let server_first = server.first(&client.first(), lookup, &server_nonce(nonce_seed))?;
        let client_final = client.final_message(&server_first);
        let (principal, server_final) = server.finish(&client_final)?;
        assert_eq!(
            Some(String::from_utf8(server_final).unwrap()),
            client.expected_server_final,
            "the server proves it knows the credential too"
        );
        Ok(principal)
    }

    fn salt() -> Vec<u8> {
        (0..MOCK_SALT_BYTES as u8).collect()
    }

    #[test]
    fn mechanisms_have_kafkas_names_and_codes() {
        let table = [
            (ScramMechanism::Sha256, "SCRAM-SHA-256", 1, 32),
            (ScramMechanism::Sha512, "SCRAM-SHA-512", 2, 64),
        ];
        for (mechanism, name, code, digest_bytes) in table {
            assert_eq!(mechanism.name(), name);
            assert_eq!(mechanism.code(), code);
            assert_eq!(mechanism.digest_bytes(), digest_bytes);
            assert_eq!(ScramMechanism::from_name(name), Some(mechanism));
            assert_eq!(ScramMechanism::from_code(code), Some(mechanism));
        }
        assert_eq!(ScramMechanism::from_code(0), None);
        assert_eq!(ScramMechanism::from_name("scram-sha-256"), None);
        assert_eq!(ScramMechanism::from_name("PLAIN"), None);
    }

    /// RFC 7677 section 3, byte for byte: the server answers the RFC's server-first and
    /// server-final to the RFC's client messages.
    #[test]
    fn rfc7677_test_vector_sha256() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let pencil = credential(ScramMechanism::Sha256, "pencil", &salt, 4096);
        let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
        let server_first = server
            .first(
                b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                |name| (name == "user").then(|| pencil.clone()),
                b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(server_first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (principal, server_final) = server
            .finish(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(principal, Principal::user("user"));
        assert_eq!(
            String::from_utf8(server_final).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn round_trips_with_both_mechanisms() {
        for mechanism in ScramMechanism::ALL {
            let alice = credential(mechanism, "s3cret", &salt(), 8192);
            let mut client = Client::new(mechanism, "alice", "s3cret", "fyko+d2lbbFgONRv9qkxdawL");
            let principal = exchange(&mut client, &[("alice", alice)], 1).unwrap();
            assert_eq!(principal.to_string(), "User:alice", "{mechanism}");
        }
    }

    #[test]
    fn escaped_user_names_round_trip() {
        let odd = credential(ScramMechanism::Sha512, "pw", &salt(), 4096);
        let mut client = Client::new(ScramMechanism::Sha512, "a,b=c", "pw", "abc");
        let principal = exchange(&mut client, &[("a,b=c", odd)], 2).unwrap();
        assert_eq!(principal, Principal::user("a,b=c"));
    }

    /// librdkafka < 2.6.1 sends the client nonce twice; that form and the RFC's pass, the full
    /// nonce followed by anything does not.
    #[test]
    fn final_nonce_forms() {
        let table = [
            (FinalNonce::Full, Ok(Principal::user("alice"))),
            (FinalNonce::Doubled, Ok(Principal::user("alice"))),
            (FinalNonce::Appended, Err(ScramError::NonceMismatch)),
        ];
        for (form, expected) in table {
            let alice = credential(ScramMechanism::Sha512, "pw", &salt(), 4096);
            let mut client = Client::new(ScramMechanism::Sha512, "alice", "pw", "cnonce");
            client.final_nonce = form;
            assert_eq!(exchange(&mut client, &[("alice", alice)], 3), expected);
        }
    }

    /// A wrong password and a user that does not exist look the same to the client: the same
    /// server-first shape (salt length, iterations), a stable salt per name, the same error at
    /// the same step.
    #[test]
    fn unknown_user_looks_like_wrong_password() {
        let mechanism = ScramMechanism::Sha512;
        let alice = credential(mechanism, "right", &salt(), MOCK_ITERATIONS);
        let users = [("alice", alice)];
        let shape = |user: &str| {
            let mut client = Client::new(mechanism, user, "wrong", "cnonce");
            let mut server = ScramServer::new(mechanism, mock_key());
            let lookup = |name: &str| {
                users
                    .iter()
                    .find(|(u, _)| *u == name)
                    .map(|(_, c)| c.clone())
            };
            let server_first = server
                .first(&client.first(), lookup, &server_nonce(4))
                .expect("both get a server-first");
            let text = String::from_utf8(server_first.clone()).unwrap();
            let salt = text.split(",s=").nth(1).unwrap().split(',').next().unwrap();
            let salt = salt.to_string();
            let error = server.finish(&client.final_message(&server_first));
            (server_first.len(), salt, error)
        };
        // "alice" and "bobby" have the same length, so whole messages compare by length.
        let (known_len, _, known_error) = shape("alice");
        let (unknown_len, unknown_salt, unknown_error) = shape("bobby");
        assert_eq!(known_len, unknown_len);
        assert_eq!(known_error, Err(ScramError::AuthenticationFailed));
        assert_eq!(unknown_error, known_error);
        let (_, again, _) = shape("bobby");
        assert_eq!(again, unknown_salt, "the mock salt is stable per user");
        let (_, other, _) = shape("carol");
        assert_ne!(other, unknown_salt, "and differs between users");
    }

    /// An unknown user fails even with the "right" password for the mock credential (which
    /// nobody knows) and can never authenticate.
    #[test]
    fn unknown_user_never_authenticates() {
        let mut client = Client::new(ScramMechanism::Sha256, "ghost", "anything", "n");
        assert_eq!(
            exchange(&mut client, &[], 5),
            Err(ScramError::AuthenticationFailed)
        );
    }

    #[test]
    fn wrong_password_fails() {
        let alice = credential(ScramMechanism::Sha256, "right", &salt(), 4096);
        let mut client = Client::new(ScramMechanism::Sha256, "alice", "wrong", "n0nce");
        assert_eq!(
            exchange(&mut client, &[("alice", alice)], 6),
            Err(ScramError::AuthenticationFailed)
        );
    }

    /// Every malformed client-first gets its own error, and the exchange is over.
    #[test]
    fn malformed_client_first_is_refused() {
        let oversized = format!("n,,n=user,r={}", "x".repeat(CLIENT_MESSAGE_MAX_BYTES));
        let long_user = format!("n,,n={},r=x", "u".repeat(USER_NAME_MAX_BYTES + 1));
        let long_nonce = format!("n,,n=user,r={}", "x".repeat(CLIENT_NONCE_MAX_BYTES + 1));
        let table: Vec<(&[u8], ScramError)> = vec![
            (b"n,,n=,r=x", ScramError::UserNameEmpty),
            (b"n,,n=us=2Xer,r=x", ScramError::UserNameEscape),
            (b"n,,n=user=,r=x", ScramError::UserNameEscape),
            (b"n,,n=us=2cer,r=x", ScramError::UserNameEscape),
            (b"n,,n=us\0er,r=x", ScramError::UserNameEscape),
            (
                b"p=tls-unique,,n=user,r=x",
                ScramError::ChannelBindingUnsupported,
            ),
            (b"y,,n=user,r=x", ScramError::Gs2FlagUnsupported),
            (b"", ScramError::Gs2FlagUnsupported),
            (
                b"n,",
                ScramError::Malformed("the gs2 header has no second comma"),
            ),
            (
                b"n,a=,n=user,r=x",
                ScramError::Malformed("empty authorization id"),
            ),
            (
                b"n,x=1,n=user,r=x",
                ScramError::Malformed("the gs2 header has an unknown field"),
            ),
            (b"n,a=admin,n=user,r=x", ScramError::AuthzidMismatch),
            (b"n,,n=user", ScramError::MissingAttribute("r")),
            (b"n,,r=x,n=user", ScramError::MissingAttribute("n")),
            (b"n,,n=user,x=1,r=x", ScramError::MissingAttribute("r")),
            (b"n,,m=ext,n=user,r=x", ScramError::ReservedAttribute),
            (b"n,,n=user,r=", ScramError::NonceEmpty),
            (b"n,,n=user,r=ab\x01c", ScramError::NonceNotPrintable),
            (b"n,,n=user,r=ab c", ScramError::NonceNotPrintable),
            (
                long_nonce.as_bytes(),
                ScramError::NonceTooLong(CLIENT_NONCE_MAX_BYTES + 1),
            ),
            (
                long_user.as_bytes(),
                ScramError::UserNameTooLong(USER_NAME_MAX_BYTES + 1),
            ),
            (
                oversized.as_bytes(),
                ScramError::MessageTooLarge(oversized.len()),
            ),
            (b"n,,n=us\xffer,r=x", ScramError::NotUtf8),
            (
                b"n,,n=user,r=x,tokenauth=true",
                ScramError::DelegationTokenUnsupported,
            ),
            (
                b"n,,n=user,r=x,tokenauth=TRUE",
                ScramError::DelegationTokenUnsupported,
            ),
            (b"n,,n=user,r=x,1=2", ScramError::ExtensionInvalid),
            (b"n,,n=user,r=x,ext", ScramError::ExtensionInvalid),
            (b"n,,n=user,r=x,ext=", ScramError::ExtensionInvalid),
            (b"n,,n=user,r=x,", ScramError::ExtensionInvalid),
        ];
        for (message, expected) in table {
            let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
            let shown = String::from_utf8_lossy(message);
            let got = server.first(message, |_| None, &server_nonce(7));
            assert_eq!(got, Err(expected), "{shown:?}");
            assert_eq!(
                server.finish(b"c=biws,r=x,p=AAAA"),
                Err(ScramError::OutOfOrder {
                    expected: "nothing: the exchange has ended"
                }),
                "a refused client-first ends the exchange: {shown:?}"
            );
        }
    }

    /// What Kafka accepts and ignores passes: unknown extensions, `tokenauth=false`, an authzid
    /// equal to the user.
    #[test]
    fn accepted_client_first_variants() {
        let table: [&[u8]; 4] = [
            b"n,,n=user,r=x,foo=bar",
            b"n,,n=user,r=x,tokenauth=false",
            b"n,a=user,n=user,r=x",
            b"n,a=a=2Cb,n=a=2Cb,r=x",
        ];
        for message in table {
            let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
            let got = server.first(message, |_| None, &server_nonce(8));
            assert!(
                got.is_ok(),
                "{:?}: {got:?}",
                String::from_utf8_lossy(message)
            );
        }
    }

    /// Every malformed client-final gets its own error after a valid client-first.
    #[test]
    fn malformed_client_final_is_refused() {
        let nonce = String::from_utf8(server_nonce(9)).unwrap();
        let full = format!("x{nonce}");
        let proof32 = STANDARD.encode([0u8; 32]);
        let proof31 = STANDARD.encode([0u8; 31]);
        let proof64 = STANDARD.encode([0u8; 64]);
        let oversized = format!("c=biws,r={full},p={}", "A".repeat(CLIENT_MESSAGE_MAX_BYTES));
        let table: Vec<(String, ScramError)> = vec![
            (
                format!("c=biws,r={full},p={proof31}"),
                ScramError::ProofLength {
                    mechanism: ScramMechanism::Sha256,
                    len: 31,
                    expected: 32,
                },
            ),
            (
                format!("c=biws,r={full},p={proof64}"),
                ScramError::ProofLength {
                    mechanism: ScramMechanism::Sha256,
                    len: 64,
                    expected: 32,
                },
            ),
            (
                format!("c=biws,r={full},p=!!!!"),
                ScramError::ProofNotBase64,
            ),
            (
                format!("c=biws,r={full}"),
                ScramError::MissingAttribute("p"),
            ),
            (
                format!("r={full},p={proof32}"),
                ScramError::MissingAttribute("c"),
            ),
            (
                format!("c=biws,p={proof32}"),
                ScramError::MissingAttribute("r"),
            ),
            // "y,," and "p=tls-unique,," encoded: not the header this client sent.
            (
                format!("c=eSws,r={full},p={proof32}"),
                ScramError::ChannelBindingMismatch,
            ),
            (
                format!("c=cD10bHMtdW5pcXVlLCw=,r={full},p={proof32}"),
                ScramError::ChannelBindingMismatch,
            ),
            (
                format!("c=!,r={full},p={proof32}"),
                ScramError::ChannelBindingMismatch,
            ),
            (format!("c=biws,r=x,p={proof32}"), ScramError::NonceMismatch),
            (
                format!("c=biws,r={full}x,p={proof32}"),
                ScramError::NonceMismatch,
            ),
            (
                format!("c=biws,r=y{full},p={proof32}"),
                ScramError::NonceMismatch,
            ),
            (
                format!("c=biws,r={full}{full},p={proof32}"),
                ScramError::NonceMismatch,
            ),
            // The doubled form (client nonce, then full nonce) gets past the nonce check.
            (
                format!("c=biws,r=x{full},p={proof32}"),
                ScramError::AuthenticationFailed,
            ),
            (
                format!("c=biws,r={full},e,p={proof32}"),
                ScramError::ExtensionInvalid,
            ),
            (
                format!("c=biws,r={full},p={proof32}"),
                ScramError::AuthenticationFailed,
            ),
            (
                oversized.clone(),
                ScramError::MessageTooLarge(oversized.len()),
            ),
        ];
        for (message, expected) in table {
            let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
            server
                .first(b"n,,n=user,r=x", |_| None, nonce.as_bytes())
                .unwrap();
            assert_eq!(
                server.finish(message.as_bytes()),
                Err(expected),
                "{message}"
            );
            assert!(
                matches!(
                    server.finish(message.as_bytes()),
                    Err(ScramError::OutOfOrder { .. })
                ),
                "a refused client-final ends the exchange: {message}"
            );
        }
    }

    /// `c=` must carry the gs2 header this client sent, authzid included: `biws` (`n,,`) is
    /// wrong after `n,a=user,`.
    #[test]
    fn channel_binding_must_echo_the_gs2_header_with_its_authzid() {
        let nonce = String::from_utf8(server_nonce(15)).unwrap();
        let proof = STANDARD.encode([0u8; 32]);
        let with_authzid = STANDARD.encode("n,a=user,");
        let table = [
            ("biws", ScramError::ChannelBindingMismatch),
            // Right binding: the exchange gets as far as the proof (the user is unknown).
            (with_authzid.as_str(), ScramError::AuthenticationFailed),
        ];
        for (binding, expected) in table {
            let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
            server
                .first(b"n,a=user,n=user,r=x", |_| None, nonce.as_bytes())
                .unwrap();
            let client_final = format!("c={binding},r=x{nonce},p={proof}");
            assert_eq!(
                server.finish(client_final.as_bytes()),
                Err(expected),
                "{binding}"
            );
        }
    }

    /// Seeded random damage (flipped bytes, truncation, inserted bytes) to good client
    /// messages never panics, and a damaged client-final never authenticates: every byte of it
    /// is covered by the proof or is the proof.
    #[test]
    fn damaged_messages_never_panic_nor_authenticate() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        fn damage(rng: &mut StdRng, good: &[u8]) -> Vec<u8> {
            let mut bad = good.to_vec();
            match rng.random_range(0..3) {
                0 => {
                    let at = rng.random_range(0..bad.len());
                    bad[at] = rng.random();
                }
                1 => bad.truncate(rng.random_range(0..bad.len())),
                _ => {
                    let at = rng.random_range(0..=bad.len());
                    bad.insert(at, rng.random());
                }
            }
            bad
        }

        let mut rng = StdRng::seed_from_u64(15);
        let alice = credential(ScramMechanism::Sha256, "pw", &salt(), 4096);
        let lookup = |name: &str| (name == "alice").then(|| alice.clone());
        for _ in 0..500 {
            let mut client = Client::new(ScramMechanism::Sha256, "alice", "pw", "cn");
            let good_first = client.first();
            let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
            let bad_first = damage(&mut rng, &good_first);
            let _ = server.first(&bad_first, lookup, &server_nonce(16));

            let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
            let server_first = server
                .first(&good_first, lookup, &server_nonce(16))
                .unwrap();
            let good_final = client.final_message(&server_first);
            let bad_final = damage(&mut rng, &good_final);
            let outcome = server.finish(&bad_final);
            assert!(
                outcome.is_err() || bad_final == good_final,
                "{:?} authenticated",
                String::from_utf8_lossy(&bad_final)
            );
        }
    }

    /// A client-final recorded from a successful exchange does not log in again: the new
    /// exchange has a new server nonce.
    #[test]
    fn replayed_client_final_fails_on_a_new_exchange() {
        let alice = credential(ScramMechanism::Sha256, "pw", &salt(), 4096);
        let lookup = |name: &str| (name == "alice").then(|| alice.clone());
        let mut client = Client::new(ScramMechanism::Sha256, "alice", "pw", "fixed");
        let client_first = client.first();
        let mut server = ScramServer::new(ScramMechanism::Sha256, mock_key());
        let server_first = server
            .first(&client_first, lookup, &server_nonce(10))
            .unwrap();
        let recorded = client.final_message(&server_first);
        assert!(server.finish(&recorded).is_ok());

        let mut replay = ScramServer::new(ScramMechanism::Sha256, mock_key());
        replay
            .first(&client_first, lookup, &server_nonce(11))
            .unwrap();
        assert_eq!(replay.finish(&recorded), Err(ScramError::NonceMismatch));
    }

    #[test]
    fn steps_out_of_order_are_errors() {
        let mut server = ScramServer::new(ScramMechanism::Sha512, mock_key());
        assert_eq!(
            server.finish(b"c=biws,r=x,p=AAAA"),
            Err(ScramError::OutOfOrder {
                expected: "client-first"
            })
        );
        // finish-before-first leaves the exchange usable from the start.
        server
            .first(b"n,,n=u,r=x", |_| None, &server_nonce(12))
            .unwrap();
        assert_eq!(
            server.first(b"n,,n=u,r=x", |_| None, &server_nonce(12)),
            Err(ScramError::OutOfOrder {
                expected: "client-final"
            })
        );

        // After a success, the exchange is over.
        let alice = credential(ScramMechanism::Sha512, "pw", &salt(), 4096);
        let mut client = Client::new(ScramMechanism::Sha512, "alice", "pw", "n");
        let mut server = ScramServer::new(ScramMechanism::Sha512, mock_key());
        let server_first = server
            .first(&client.first(), |_| Some(alice.clone()), &server_nonce(13))
            .unwrap();
        let client_final = client.final_message(&server_first);
        server.finish(&client_final).unwrap();
        assert!(matches!(
            server.finish(&client_final),
            Err(ScramError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn caller_mistakes_are_errors_not_panics() {
        let mut server = ScramServer::new(ScramMechanism::Sha512, mock_key());
        let sha256 = credential(ScramMechanism::Sha256, "pw", &salt(), 4096);
        assert_eq!(
            server.first(b"n,,n=u,r=x", |_| Some(sha256.clone()), &server_nonce(14)),
            Err(ScramError::CredentialMechanismMismatch {
                expected: ScramMechanism::Sha512,
                found: ScramMechanism::Sha256,
            })
        );
        for nonce in [
            &b"short"[..],
            &[b'a'; SERVER_NONCE_MAX_BYTES + 1],
            b"has,a,comma,1234567",
        ] {
            let mut server = ScramServer::new(ScramMechanism::Sha512, mock_key());
            assert_eq!(
                server.first(b"n,,n=u,r=x", |_| None, nonce),
                Err(ScramError::ServerNonceInvalid)
            );
        }
    }

    #[test]
    fn credential_bounds() {
        let sha256 = ScramMechanism::Sha256;
        let key32 = vec![0u8; 32];
        let table = [
            (
                salt(),
                4095,
                key32.clone(),
                CredentialError::IterationsTooFew(4095),
            ),
            (
                salt(),
                16385,
                key32.clone(),
                CredentialError::IterationsTooMany(16385),
            ),
            (
                vec![0; 15],
                4096,
                key32.clone(),
                CredentialError::SaltTooShort(15),
            ),
            (
                vec![0; 1025],
                4096,
                key32.clone(),
                CredentialError::SaltTooLong(1025),
            ),
            (
                salt(),
                4096,
                vec![0; 31],
                CredentialError::KeyLength {
                    mechanism: sha256,
                    len: 31,
                    expected: 32,
                },
            ),
        ];
        for (salt, iterations, salted, expected) in table {
            let got = ScramCredential::derive(sha256, &salted, &salt, iterations);
            assert_eq!(got.map(|_| ()), Err(expected));
        }
        assert_eq!(
            salted_password(sha256, b"pw", &salt(), 100_000).map(|_| ()),
            Err(CredentialError::IterationsTooMany(100_000)),
            "the bound is checked before any PBKDF2 round"
        );
        assert!(ScramCredential::derive(sha256, &key32, &salt(), 16384).is_ok());
        assert_eq!(validate_user_name(""), Err(CredentialError::UserNameEmpty));
        assert_eq!(
            validate_user_name(&"u".repeat(257)),
            Err(CredentialError::UserNameTooLong(257))
        );
        assert_eq!(validate_user_name("alice"), Ok(()));
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let alice = credential(ScramMechanism::Sha256, "pencil", &salt(), 4096);
        let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt(), 4096).unwrap();
        let shown = format!("{alice:?} {salted:?} {:?}", mock_key());
        for secret in [alice.stored_key(), alice.server_key(), salted.as_bytes()] {
            assert!(!shown.contains(&format!("{secret:?}")), "{shown}");
            assert!(!shown.contains(&format!("{:?}", &secret[..4])), "{shown}");
        }
        assert!(!shown.contains("pencil"));
        assert!(shown.contains("<redacted>"));
    }
}
