//! The security state of one Kafka connection, sans-IO: who it is, what it may send next, and
//! how its SASL exchange advances.
//!
//! The connection loop (`crate::server`, wired in a later piece) owns the socket, the clock,
//! the random source and the blocking thread pool; a [`Session`] owns the decisions. For every
//! frame the loop peeks the request header (api key, version) and asks [`Session::gate`]
//! **before** the body is decoded, so an unauthenticated peer never reaches the body codecs
//! beyond the two SASL requests and ApiVersions. SaslHandshake and SaslAuthenticate bodies then
//! go to [`Session::handshake`] and [`Session::authenticate`]; after a handshake v0 the next
//! frames are raw tokens for [`Session::legacy_token`].
//!
//! ```text
//! PLAINTEXT, TLS, REPLICATION:  Authenticated{principal of the transport, no expiry}
//! SASL_PLAINTEXT, SASL_SSL:
//!   AwaitingHandshake{api_versions seen}
//!     --SaslHandshake(enabled mechanism)-->   Authenticating{mechanism, framing v0|v1}
//!     --SaslHandshake(other mechanism)-->     Failed (33 + the enabled list, close)
//!   Authenticating --tokens, identity verified--> Authenticated{principal, mechanism, expiry}
//!                  --bad token-->                 Failed (58, close)
//!   Authenticated{expiry set} --SaslHandshake, >= 1 s after the last start--> Reauthenticating
//!   Reauthenticating --same principal and mechanism--> Authenticated{new expiry}
//!                    --otherwise-->                    Failed (58, close)
//! ```
//!
//! # What each state lets through ([`Session::gate`])
//!
//! | state | passes (decode the body) | anything else |
//! |---|---|---|
//! | AwaitingHandshake | ApiVersions (at most [`SaslOptions::api_versions_before_handshake_max`]), SaslHandshake of a served version | close, no response |
//! | Authenticating, Reauthenticating (v1) | SaslAuthenticate of a served version | ILLEGAL_SASL_STATE (34) response, then close |
//! | Authenticating (v0 legacy) | nothing: frames are raw tokens | close |
//! | Authenticated, not expired | everything | — |
//! | Authenticated, expired | SaslHandshake starting a re-authentication | close, no response |
//! | Failed | nothing | close |
//!
//! # Guarantees
//! - `Authenticated` is entered only with an identity a mechanism verified: a SCRAM exchange that
//!   reached its last step with a wrong proof is a failure, never a success.
//! - Every handshake (first or re-authentication) starts a new mechanism server.
//! - A failure message names only the mechanism ([`failure_message`]), so a client cannot learn
//!   whether a user exists; unknown users go through the same SCRAM round trips as known ones.
//! - A session lifetime is announced only when it is enforced: `min(connections.max.reauth.ms,
//!   credential expiry)` (KIP-368; SCRAM and PLAIN credentials do not expire), and the expiry is
//!   enforced whatever SaslAuthenticate version the client used (KAFKA-9241); a v0 client is not
//!   told and is simply closed at the first request after it.
//! - Nothing secret (token bytes, passwords) is kept after use or shown by `Debug`.
//!
//! # PLAIN and the blocking pool
//!
//! Checking a PLAIN password runs a full PBKDF2 (up to 16384 rounds), which must not run on the
//! async runtime. So [`Session::authenticate`] (and [`Session::legacy_token`]) answer
//! [`Authenticate::CheckPlain`] with a [`PlainCheck`]: a `Send` value holding the message. The
//! shell runs [`PlainCheck::run`] on a blocking thread (`tokio::task::spawn_blocking`) with a
//! credential lookup it can move there (an `Arc` of the image), and hands the [`PlainVerdict`]
//! back to [`Session::plain_checked`], which answers the [`AuthReply`]. SCRAM steps are a few
//! HMACs and are answered at once.
//!
//! # Differences from Kafka
//! - Kafka allows one ApiVersions before the handshake; Ferry allows
//!   [`API_VERSIONS_BEFORE_HANDSHAKE_DEFAULT`] (a client retrying after UNSUPPORTED_VERSION
//!   sends two).
//! - Re-authentication needs SaslHandshake v1: a v0 handshake on an authenticated connection
//!   fails and closes (raw token framing cannot be mixed with requests in flight).
//! - PLAIN failures also get the fixed per-mechanism text, where Kafka passes the PLAIN server's
//!   own messages ("Invalid username or password", ...).
//! - Unknown API keys never reach the gate: the header peek closes on them, as decoding does.
//!
//! # Caveats
//! - For [`Gate::IllegalState`] the shell answers with the error response of the request's API;
//!   it needs a decoded body to build one (Kafka parses it too), bounded by the pre-auth frame
//!   size.
//! - `connection.failed.authentication.delay.ms` and per-address failure counting are the
//!   shell's: it delays writing a reply whose `close` is set.

use std::fmt;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::Principal;
use super::plain::{self, PlainError};
use super::scram::{
    MockSaltKey, ScramCredential, ScramMechanism, ScramServer, encode_server_nonce,
};
use crate::protocol::versions;

/// How many ApiVersions requests a SASL listener answers before the handshake by default.
pub const API_VERSIONS_BEFORE_HANDSHAKE_DEFAULT: u8 = 4;
/// The most ApiVersions requests before the handshake a listener may be configured to answer.
pub const API_VERSIONS_BEFORE_HANDSHAKE_MAX: u8 = 16;
/// The shortest time between the starts of two (re-)authentications on one connection, in
/// milliseconds (Kafka's): a SaslHandshake sooner than this after the last start is answered
/// ILLEGAL_SASL_STATE as an ordinary request.
pub const REAUTH_INTERVAL_MIN_MS: i64 = 1000;

/// The largest frame a connection may send before it is authenticated, and during a
/// re-authentication, in bytes (Kafka's `sasl.server.max.receive.size`). The shell checks it
/// from the size prefix ([`Session::frame_bytes_max`]), before reading the frame.
pub const UNAUTHENTICATED_FRAME_BYTES_MAX: usize = 524_288;

/// A SASL mechanism Ferry's listeners can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256 or SCRAM-SHA-512: two round trips, the password never sent.
    Scram(ScramMechanism),
    /// PLAIN: the password in clear, one round trip; only over TLS unless explicitly allowed.
    Plain,
}

impl Mechanism {
    /// The SASL name, as in SaslHandshake and `sasl.enabled.mechanisms`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Scram(scram) => scram.name(),
            Mechanism::Plain => "PLAIN",
        }
    }

    /// The mechanism of this SASL name (exact, case-sensitive, as Kafka compares them).
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "PLAIN" {
            return Some(Mechanism::Plain);
        }
        ScramMechanism::from_name(name).map(Mechanism::Scram)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SaslAuthenticate error message of every failed authentication with `mechanism`. It
/// names only the mechanism: never the user, never why.
pub fn failure_message(mechanism: Mechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {mechanism}"
    )
}

/// The settings of a SASL listener (`SASL_PLAINTEXT` or `SASL_SSL`), before validation.
#[derive(Clone, Debug)]
pub struct SaslOptions {
    /// `sasl.enabled.mechanisms`, in the order the handshake lists them.
    pub mechanisms: Vec<Mechanism>,
    /// Whether the transport is TLS (`SASL_SSL`).
    pub tls: bool,
    /// Offer PLAIN on a listener without TLS too. Off by default: the password would cross
    /// the network in clear.
    pub plain_without_tls: bool,
    /// `connections.max.reauth.ms`: the longest session before the client must
    /// re-authenticate; 0 disables expiry (Kafka's default).
    pub connections_max_reauth_ms: u64,
    /// How many ApiVersions requests are answered before the handshake (1 to
    /// [`API_VERSIONS_BEFORE_HANDSHAKE_MAX`]).
    pub api_versions_before_handshake_max: u8,
}

impl Default for SaslOptions {
    fn default() -> Self {
        Self {
            mechanisms: vec![
                Mechanism::Scram(ScramMechanism::Sha512),
                Mechanism::Scram(ScramMechanism::Sha256),
            ],
            tls: true,
            plain_without_tls: false,
            connections_max_reauth_ms: 0,
            api_versions_before_handshake_max: API_VERSIONS_BEFORE_HANDSHAKE_DEFAULT,
        }
    }
}

/// Why listener settings were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListenerError {
    /// No mechanism would be offered (none enabled, or only PLAIN without TLS).
    #[error(
        "a SASL listener needs at least one mechanism it can offer (PLAIN is offered only over TLS)"
    )]
    NoMechanism,
    /// A mechanism listed twice.
    #[error("SASL mechanism {0} is listed twice")]
    DuplicateMechanism(Mechanism),
    /// The ApiVersions bound is 0 or above [`API_VERSIONS_BEFORE_HANDSHAKE_MAX`].
    #[error(
        "api_versions_before_handshake_max is {0}, it must be 1 to {API_VERSIONS_BEFORE_HANDSHAKE_MAX}"
    )]
    ApiVersionsBound(u8),
    /// `connections.max.reauth.ms` does not fit a signed millisecond count.
    #[error("connections.max.reauth.ms {0} is too large")]
    ReauthTooLarge(u64),
}

/// A validated SASL listener: what it offers and how long its sessions last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslListener {
    /// The mechanisms the handshake offers, in order (PLAIN already left out without TLS).
    offered: Vec<Mechanism>,
    /// `connections.max.reauth.ms`, 0 when sessions do not expire.
    reauth_ms_max: i64,
    /// The ApiVersions bound before the handshake.
    api_versions_max: u8,
}

impl SaslListener {
    /// Validates `options`. PLAIN is dropped from the offer on a listener without TLS unless
    /// `plain_without_tls` is set.
    pub fn new(options: SaslOptions) -> Result<Self, ListenerError> {
        let mut offered = Vec::new();
        for mechanism in options.mechanisms {
            if offered.contains(&mechanism) {
                return Err(ListenerError::DuplicateMechanism(mechanism));
            }
            if mechanism == Mechanism::Plain && !options.tls && !options.plain_without_tls {
                continue;
            }
            offered.push(mechanism);
        }
        if offered.is_empty() {
            return Err(ListenerError::NoMechanism);
        }
        let api_versions_max = options.api_versions_before_handshake_max;
        if !(1..=API_VERSIONS_BEFORE_HANDSHAKE_MAX).contains(&api_versions_max) {
            return Err(ListenerError::ApiVersionsBound(api_versions_max));
        }
        let reauth_ms_max = i64::try_from(options.connections_max_reauth_ms)
            .map_err(|_| ListenerError::ReauthTooLarge(options.connections_max_reauth_ms))?;
        Ok(Self {
            offered,
            reauth_ms_max,
            api_versions_max,
        })
    }

    /// The mechanisms the handshake offers, in order.
    pub fn offered(&self) -> &[Mechanism] {
        &self.offered
    }

    /// The names the handshake lists.
    fn offered_names(&self) -> Vec<&'static str> {
        self.offered.iter().map(|m| m.name()).collect()
    }
}

/// How a listener authenticates its connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerSecurity {
    /// `PLAINTEXT`, `TLS` (SSL) and `REPLICATION`: the transport decides the principal
    /// (`User:ANONYMOUS`, or the client certificate's), and SASL is refused.
    Transport,
    /// `SASL_PLAINTEXT` and `SASL_SSL`: the SASL exchange decides the principal.
    Sasl(Arc<SaslListener>),
}

/// Why the connection is closed without (further) response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// A request other than ApiVersions or SaslHandshake before the handshake (Kafka's
    /// IllegalSaslStateException, raised before the body is read).
    BeforeHandshake(ApiKey),
    /// More ApiVersions requests before the handshake than the listener answers.
    TooManyApiVersions,
    /// A SaslHandshake or SaslAuthenticate of a version the broker does not serve, before the
    /// exchange completed (Kafka cannot build a response for it either).
    UnsupportedVersion(ApiKey, i16),
    /// A request while the connection sends raw SASL tokens (after a v0 handshake).
    LegacyTokenExpected,
    /// The session's lifetime has passed and the request is not a re-authentication.
    SessionExpired,
    /// The exchange already failed.
    Failed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::BeforeHandshake(key) => {
                write!(f, "{key:?} request before SASL authentication")
            }
            CloseReason::TooManyApiVersions => {
                f.write_str("too many ApiVersions requests before the SASL handshake")
            }
            CloseReason::UnsupportedVersion(key, version) => {
                write!(
                    f,
                    "unsupported {key:?} v{version} during SASL authentication"
                )
            }
            CloseReason::LegacyTokenExpected => {
                f.write_str("a Kafka request where a raw SASL token was expected")
            }
            CloseReason::SessionExpired => f.write_str("the SASL session has expired"),
            CloseReason::Failed => f.write_str("SASL authentication failed"),
        }
    }
}

/// What to do with a request, decided from its header alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Decode the body and serve it: SaslHandshake to [`Session::handshake`],
    /// SaslAuthenticate to [`Session::authenticate`], the rest to the broker as
    /// [`Session::principal`].
    Decode,
    /// Close the connection without answering.
    Close(CloseReason),
    /// Answer the request with its API's error response carrying ILLEGAL_SASL_STATE (34),
    /// then close.
    IllegalState,
}

/// The answer to a SaslHandshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeReply {
    /// 0, UNSUPPORTED_SASL_MECHANISM (33) or ILLEGAL_SASL_STATE (34).
    pub error_code: i16,
    /// The mechanisms the listener offers (empty on a listener without SASL, as Kafka answers).
    pub mechanisms: Vec<&'static str>,
    /// Close the connection after writing the reply.
    pub close: bool,
}

/// The answer to one SASL token: a SaslAuthenticate response, or (legacy framing) a raw frame.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthReply {
    /// The mechanism's challenge (server-first, server-final, or empty).
    pub bytes: Vec<u8>,
    /// The session lifetime to announce (v1+); non-zero only on the step that completes an
    /// exchange on a listener that enforces expiry.
    pub session_lifetime_ms: i64,
    /// 0, ILLEGAL_SASL_STATE (34) or SASL_AUTHENTICATION_FAILED (58).
    pub error_code: i16,
    /// The error message (fixed per mechanism for failures), `None` on success.
    pub error_message: Option<String>,
    /// Close the connection after writing the reply.
    pub close: bool,
}

impl AuthReply {
    /// What to write in legacy (v0) framing: the challenge as a size-prefixed raw frame, or
    /// nothing when the step failed (Kafka writes nothing and closes).
    pub fn legacy_frame(&self) -> Option<&[u8]> {
        (self.error_code == 0).then_some(self.bytes.as_slice())
    }

    fn challenge(bytes: Vec<u8>, session_lifetime_ms: i64) -> Self {
        Self {
            bytes,
            session_lifetime_ms,
            error_code: 0,
            error_message: None,
            close: false,
        }
    }

    fn error(error: ResponseError, message: String, close: bool) -> Self {
        Self {
            bytes: Vec::new(),
            session_lifetime_ms: 0,
            error_code: error.code(),
            error_message: Some(message),
            close,
        }
    }
}

impl fmt::Debug for AuthReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The challenge is public by design, but keep Debug output short and uniform.
        f.debug_struct("AuthReply")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("session_lifetime_ms", &self.session_lifetime_ms)
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("close", &self.close)
            .finish()
    }
}

/// The outcome of a token: a reply now, or a PLAIN password to check on a blocking thread.
#[derive(Debug)]
pub enum Authenticate {
    /// Write this reply.
    Reply(AuthReply),
    /// Run [`PlainCheck::run`] off the async runtime, then pass its verdict to
    /// [`Session::plain_checked`].
    CheckPlain(PlainCheck),
}

/// A PLAIN message waiting for its PBKDF2 check. `Debug` does not show the message.
pub struct PlainCheck {
    /// The client's message (it holds the password).
    message: Vec<u8>,
    /// The process's mock key, for unknown users.
    mock_key: MockSaltKey,
}

impl fmt::Debug for PlainCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainCheck(<redacted>)")
    }
}

impl PlainCheck {
    /// Checks the password against the user's SCRAM credential (one PBKDF2): run it on a
    /// blocking thread. `lookup` gives a user's credential for a mechanism.
    pub fn run(
        self,
        lookup: impl Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    ) -> PlainVerdict {
        PlainVerdict(plain::authenticate(&self.message, lookup, &self.mock_key))
    }
}

/// The result of a [`PlainCheck`], for [`Session::plain_checked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainVerdict(Result<Principal, PlainError>);

/// How the next frames of a connection are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Kafka requests: peek the header, ask [`Session::gate`].
    Requests,
    /// Raw SASL tokens (after a v0 handshake): pass the payload to [`Session::legacy_token`].
    LegacyToken,
}

/// An authenticated identity and its session.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Established {
    /// Who the connection is.
    principal: Principal,
    /// The SASL mechanism that proved it; `None` on a listener without SASL.
    mechanism: Option<Mechanism>,
    /// When the session ends (ms), if it expires.
    expires_at_ms: Option<i64>,
    /// When the handshake of the last (re-)authentication arrived (ms).
    started_ms: i64,
}

impl Established {
    /// Whether a SaslHandshake now starts a re-authentication (KIP-368): the session expires,
    /// and its last (re-)authentication started at least [`REAUTH_INTERVAL_MIN_MS`] ago.
    fn may_reauthenticate(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some()
            && now_ms.saturating_sub(self.started_ms) >= REAUTH_INTERVAL_MIN_MS
    }
}

/// The mechanism server of one exchange.
enum Exchange {
    /// A SCRAM server (a new one per handshake) waiting for client-first.
    ScramFirst(ScramServer),
    /// The same server, server-first sent, waiting for client-final.
    ScramFinal(ScramServer),
    /// PLAIN, waiting for its one message.
    Plain,
    /// PLAIN, its message handed to the shell for the PBKDF2 check.
    PlainChecking,
    /// A re-authentication handshake named another mechanism than the session's: the next
    /// token fails (Kafka's REAUTH_BAD_MECHANISM).
    BadMechanism,
    /// Taken apart while a token is processed; never left in place.
    Ended,
}

/// One SASL exchange in progress.
struct Exchanging {
    /// The mechanism the handshake chose.
    mechanism: Mechanism,
    /// Raw token frames (handshake v0) or SaslAuthenticate requests (v1).
    framing: Framing,
    /// The mechanism's server.
    exchange: Exchange,
    /// When the handshake arrived (ms).
    started_ms: i64,
    /// The session being renewed, for a re-authentication.
    previous: Option<Established>,
}

/// Where a connection stands.
enum State {
    /// A SASL listener before the handshake; `api_versions` answered so far.
    AwaitingHandshake { api_versions: u8 },
    /// A SASL exchange (first authentication or re-authentication).
    Authenticating(Box<Exchanging>),
    /// A verified identity.
    Authenticated(Established),
    /// The exchange failed; the connection is being closed.
    Failed,
}

/// The phases of a session, as tests and logs name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for SaslHandshake.
    AwaitingHandshake,
    /// First SASL exchange.
    Authenticating,
    /// SASL exchange renewing an authenticated session.
    Reauthenticating,
    /// Authenticated.
    Authenticated,
    /// Failed; closing.
    Failed,
}

/// The security state machine of one connection. See the module docs.
pub struct Session {
    /// The listener's SASL settings; `None` on a listener without SASL.
    sasl: Option<Arc<SaslListener>>,
    /// The process's key for unknown users' mock SCRAM exchanges.
    mock_key: MockSaltKey,
    /// Where the connection stands.
    state: State,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase())
            .field("principal", &self.principal())
            .finish()
    }
}

impl Session {
    /// A new connection on `listener`. On a listener without SASL it is authenticated from the
    /// start as `transport_principal` (`User:ANONYMOUS`, or the client certificate's mapped
    /// name); on a SASL listener that argument is not used (as in Kafka, SASL_SSL takes the
    /// SASL identity, not the certificate's). `mock_key` is the process's [`MockSaltKey`].
    pub fn open(
        listener: &ListenerSecurity,
        transport_principal: Principal,
        mock_key: MockSaltKey,
    ) -> Self {
        match listener {
            ListenerSecurity::Transport => Self {
                sasl: None,
                mock_key,
                state: State::Authenticated(Established {
                    principal: transport_principal,
                    mechanism: None,
                    expires_at_ms: None,
                    started_ms: 0,
                }),
            },
            ListenerSecurity::Sasl(sasl) => Self {
                sasl: Some(sasl.clone()),
                mock_key,
                state: State::AwaitingHandshake { api_versions: 0 },
            },
        }
    }

    /// The authenticated principal, if the connection has one. During a re-authentication it
    /// is still the previous one (requests in flight keep their identity).
    pub fn principal(&self) -> Option<&Principal> {
        match &self.state {
            State::Authenticated(established) => Some(&established.principal),
            State::Authenticating(exchanging) => exchanging.previous.as_ref().map(|p| &p.principal),
            State::AwaitingHandshake { .. } | State::Failed => None,
        }
    }

    /// Where the connection stands.
    pub fn phase(&self) -> Phase {
        match &self.state {
            State::AwaitingHandshake { .. } => Phase::AwaitingHandshake,
            State::Authenticating(exchanging) if exchanging.previous.is_some() => {
                Phase::Reauthenticating
            }
            State::Authenticating(_) => Phase::Authenticating,
            State::Authenticated(_) => Phase::Authenticated,
            State::Failed => Phase::Failed,
        }
    }

    /// The mechanism of the exchange in progress or of the authenticated session.
    pub fn mechanism(&self) -> Option<Mechanism> {
        match &self.state {
            State::Authenticating(exchanging) => Some(exchanging.mechanism),
            State::Authenticated(established) => established.mechanism,
            State::AwaitingHandshake { .. } | State::Failed => None,
        }
    }

    /// When the session expires (ms), if it does.
    pub fn expires_at_ms(&self) -> Option<i64> {
        match &self.state {
            State::Authenticated(established) => established.expires_at_ms,
            _ => None,
        }
    }

    /// The largest frame the connection may send next: [`UNAUTHENTICATED_FRAME_BYTES_MAX`]
    /// until it is authenticated and while it re-authenticates, `None` (the listener's own
    /// bound) once authenticated.
    pub fn frame_bytes_max(&self) -> Option<usize> {
        match &self.state {
            State::Authenticated(_) => None,
            _ => Some(UNAUTHENTICATED_FRAME_BYTES_MAX),
        }
    }

    /// How the next frame is to be read.
    pub fn framing(&self) -> Framing {
        match &self.state {
            State::Authenticating(exchanging) => exchanging.framing,
            _ => Framing::Requests,
        }
    }

    /// Decides what to do with a request from its header, before its body is decoded.
    /// A `Close` or `IllegalState` decision also moves the session to `Failed`: the connection
    /// ends with it.
    pub fn gate(&mut self, api_key: ApiKey, api_version: i16, now_ms: i64) -> Gate {
        let gate = self.decide(api_key, api_version, now_ms);
        if gate != Gate::Decode {
            self.state = State::Failed;
        }
        gate
    }

    /// The decision of [`Session::gate`], counting pre-handshake ApiVersions.
    fn decide(&mut self, api_key: ApiKey, api_version: i16, now_ms: i64) -> Gate {
        match &mut self.state {
            State::Failed => Gate::Close(CloseReason::Failed),
            State::AwaitingHandshake { api_versions } => match api_key {
                ApiKey::SaslHandshake if !versions::is_supported(api_key, api_version) => {
                    Gate::Close(CloseReason::UnsupportedVersion(api_key, api_version))
                }
                ApiKey::SaslHandshake => Gate::Decode,
                ApiKey::ApiVersions => {
                    let bound = self.sasl.as_ref().map_or(0, |sasl| sasl.api_versions_max);
                    if *api_versions >= bound {
                        return Gate::Close(CloseReason::TooManyApiVersions);
                    }
                    *api_versions += 1;
                    Gate::Decode
                }
                other => Gate::Close(CloseReason::BeforeHandshake(other)),
            },
            State::Authenticating(exchanging) => {
                if exchanging.framing == Framing::LegacyToken {
                    return Gate::Close(CloseReason::LegacyTokenExpected);
                }
                if !versions::is_supported(api_key, api_version) {
                    return Gate::Close(CloseReason::UnsupportedVersion(api_key, api_version));
                }
                match api_key {
                    ApiKey::SaslAuthenticate => Gate::Decode,
                    _ => Gate::IllegalState,
                }
            }
            State::Authenticated(established) => {
                let expired = established
                    .expires_at_ms
                    .is_some_and(|expires_at_ms| now_ms > expires_at_ms);
                let reauthenticating =
                    api_key == ApiKey::SaslHandshake && established.may_reauthenticate(now_ms);
                if expired && !reauthenticating {
                    return Gate::Close(CloseReason::SessionExpired);
                }
                Gate::Decode
            }
        }
    }

    /// Answers a SaslHandshake that [`Session::gate`] let through.
    pub fn handshake(&mut self, mechanism_name: &str, version: i16, now_ms: i64) -> HandshakeReply {
        let Some(sasl) = self.sasl.clone() else {
            // Kafka's KafkaApis answer on a listener without SASL: the connection stays.
            return HandshakeReply {
                error_code: ResponseError::IllegalSaslState.code(),
                mechanisms: Vec::new(),
                close: false,
            };
        };
        let offered = sasl.offered_names();
        let requested = Mechanism::from_name(mechanism_name)
            .filter(|mechanism| sasl.offered.contains(mechanism));
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitingHandshake { .. } => {
                let Some(mechanism) = requested else {
                    return HandshakeReply {
                        error_code: ResponseError::UnsupportedSaslMechanism.code(),
                        mechanisms: offered,
                        close: true,
                    };
                };
                self.state = State::Authenticating(Box::new(Exchanging {
                    mechanism,
                    framing: framing_of(version),
                    exchange: self.new_exchange(mechanism),
                    started_ms: now_ms,
                    previous: None,
                }));
                HandshakeReply {
                    error_code: 0,
                    mechanisms: offered,
                    close: false,
                }
            }
            State::Authenticated(established) => {
                if !established.may_reauthenticate(now_ms) {
                    // No re-authentication on this session: an ordinary request, answered as
                    // Kafka's KafkaApis does.
                    self.state = State::Authenticated(established);
                    return HandshakeReply {
                        error_code: ResponseError::IllegalSaslState.code(),
                        mechanisms: Vec::new(),
                        close: false,
                    };
                }
                if framing_of(version) == Framing::LegacyToken {
                    return HandshakeReply {
                        error_code: ResponseError::IllegalSaslState.code(),
                        mechanisms: offered,
                        close: true,
                    };
                }
                let Some(mechanism) = requested else {
                    return HandshakeReply {
                        error_code: ResponseError::UnsupportedSaslMechanism.code(),
                        mechanisms: offered,
                        close: true,
                    };
                };
                // Another enabled mechanism than the session's: accepted here, failed at the
                // first token, as Kafka does.
                let exchange = if Some(mechanism) == established.mechanism {
                    self.new_exchange(mechanism)
                } else {
                    Exchange::BadMechanism
                };
                self.state = State::Authenticating(Box::new(Exchanging {
                    mechanism,
                    framing: Framing::Requests,
                    exchange,
                    started_ms: now_ms,
                    previous: Some(established),
                }));
                HandshakeReply {
                    error_code: 0,
                    mechanisms: offered,
                    close: false,
                }
            }
            // The gate refuses a handshake in these states; refuse again if it comes anyway.
            State::Authenticating(_) | State::Failed => HandshakeReply {
                error_code: ResponseError::IllegalSaslState.code(),
                mechanisms: Vec::new(),
                close: true,
            },
        }
    }

    /// Answers the token of a SaslAuthenticate request that [`Session::gate`] let through.
    /// `nonce_random` is fresh randomness for a SCRAM server nonce (18 bytes make 24
    /// characters); `lookup` gives a user's credential for a mechanism.
    pub fn authenticate(
        &mut self,
        token: &[u8],
        now_ms: i64,
        lookup: impl Fn(&str, ScramMechanism) -> Option<ScramCredential>,
        nonce_random: &[u8],
    ) -> Authenticate {
        self.token(Framing::Requests, token, now_ms, lookup, nonce_random)
    }

    /// Answers one raw token frame after a v0 handshake ([`Framing::LegacyToken`]). The shell
    /// writes [`AuthReply::legacy_frame`] size-prefixed when it is `Some`, and closes when
    /// `close` is set.
    pub fn legacy_token(
        &mut self,
        token: &[u8],
        now_ms: i64,
        lookup: impl Fn(&str, ScramMechanism) -> Option<ScramCredential>,
        nonce_random: &[u8],
    ) -> Authenticate {
        self.token(Framing::LegacyToken, token, now_ms, lookup, nonce_random)
    }

    /// Completes a PLAIN exchange with the verdict of its [`PlainCheck`].
    pub fn plain_checked(&mut self, verdict: PlainVerdict, now_ms: i64) -> AuthReply {
        let exchanging = match std::mem::replace(&mut self.state, State::Failed) {
            State::Authenticating(exchanging)
                if matches!(exchanging.exchange, Exchange::PlainChecking) =>
            {
                exchanging
            }
            other => {
                self.state = other;
                return self.out_of_order();
            }
        };
        match verdict.0 {
            Ok(principal) => self.succeed(*exchanging, principal, Vec::new(), now_ms),
            Err(_) => self.fail(Mechanism::Plain),
        }
    }

    /// One token, in either framing.
    fn token(
        &mut self,
        framing: Framing,
        token: &[u8],
        now_ms: i64,
        lookup: impl Fn(&str, ScramMechanism) -> Option<ScramCredential>,
        nonce_random: &[u8],
    ) -> Authenticate {
        let mut exchanging = match std::mem::replace(&mut self.state, State::Failed) {
            State::Authenticating(exchanging) if exchanging.framing == framing => exchanging,
            State::Authenticated(established) if framing == Framing::Requests => {
                // As Kafka's KafkaApis: an ordinary request after authentication.
                self.state = State::Authenticated(established);
                return Authenticate::Reply(AuthReply::error(
                    ResponseError::IllegalSaslState,
                    "SaslAuthenticate request received after successful authentication".into(),
                    false,
                ));
            }
            _ => return Authenticate::Reply(self.out_of_order()),
        };
        let mechanism = exchanging.mechanism;
        match std::mem::replace(&mut exchanging.exchange, Exchange::Ended) {
            Exchange::ScramFirst(mut server) => {
                let scram = server.mechanism();
                let nonce = encode_server_nonce(nonce_random);
                match server.first(token, |user| lookup(user, scram), &nonce) {
                    Ok(server_first) => {
                        exchanging.exchange = Exchange::ScramFinal(server);
                        self.state = State::Authenticating(exchanging);
                        Authenticate::Reply(AuthReply::challenge(server_first, 0))
                    }
                    Err(_) => Authenticate::Reply(self.fail(mechanism)),
                }
            }
            Exchange::ScramFinal(mut server) => match server.finish(token) {
                // Only here has the client proved the password.
                Ok((principal, server_final)) => {
                    Authenticate::Reply(self.succeed(*exchanging, principal, server_final, now_ms))
                }
                Err(_) => Authenticate::Reply(self.fail(mechanism)),
            },
            // Refused before it is copied or reaches a blocking thread.
            Exchange::Plain if token.len() > plain::MESSAGE_MAX_BYTES => {
                Authenticate::Reply(self.fail(mechanism))
            }
            Exchange::Plain => {
                exchanging.exchange = Exchange::PlainChecking;
                self.state = State::Authenticating(exchanging);
                Authenticate::CheckPlain(PlainCheck {
                    message: token.to_vec(),
                    mock_key: self.mock_key.clone(),
                })
            }
            Exchange::PlainChecking | Exchange::BadMechanism | Exchange::Ended => {
                Authenticate::Reply(self.fail(mechanism))
            }
        }
    }

    /// Enters `Authenticated` with a verified principal, after the re-authentication checks.
    fn succeed(
        &mut self,
        exchanging: Exchanging,
        principal: Principal,
        challenge: Vec<u8>,
        now_ms: i64,
    ) -> AuthReply {
        if let Some(previous) = &exchanging.previous
            && previous.principal != principal
        {
            self.state = State::Failed;
            return AuthReply::error(
                ResponseError::SaslAuthenticationFailed,
                format!(
                    "Cannot change principals during re-authentication from {}: {}",
                    previous.principal, principal
                ),
                true,
            );
        }
        let reauth_ms_max = self.sasl.as_ref().map_or(0, |sasl| sasl.reauth_ms_max);
        // SCRAM and PLAIN credentials carry no expiry of their own.
        let lifetime_ms = session_lifetime_ms(reauth_ms_max, None, now_ms);
        self.state = State::Authenticated(Established {
            principal,
            mechanism: Some(exchanging.mechanism),
            expires_at_ms: (lifetime_ms > 0).then(|| now_ms.saturating_add(lifetime_ms)),
            started_ms: exchanging.started_ms,
        });
        AuthReply::challenge(challenge, lifetime_ms)
    }

    /// Enters `Failed`, answering the mechanism's fixed failure text.
    fn fail(&mut self, mechanism: Mechanism) -> AuthReply {
        self.state = State::Failed;
        AuthReply::error(
            ResponseError::SaslAuthenticationFailed,
            failure_message(mechanism),
            true,
        )
    }

    /// A token the session did not expect; the state is already `Failed`.
    fn out_of_order(&mut self) -> AuthReply {
        self.state = State::Failed;
        AuthReply::error(
            ResponseError::IllegalSaslState,
            "Unexpected SASL token: no SASL exchange is in progress".into(),
            true,
        )
    }

    /// The mechanism server for a new exchange.
    fn new_exchange(&self, mechanism: Mechanism) -> Exchange {
        match mechanism {
            Mechanism::Scram(scram) => {
                Exchange::ScramFirst(ScramServer::new(scram, self.mock_key.clone()))
            }
            Mechanism::Plain => Exchange::Plain,
        }
    }
}

/// The framing a handshake of `version` selects.
fn framing_of(version: i16) -> Framing {
    if version == 0 {
        Framing::LegacyToken
    } else {
        Framing::Requests
    }
}

/// The session lifetime to announce and enforce (KIP-368): `min(credential expiry - now,
/// connections.max.reauth.ms)` when both exist, else whichever exists, never negative; 0 when
/// neither exists (the session does not expire). `reauth_ms_max` 0 means no maximum.
pub fn session_lifetime_ms(
    reauth_ms_max: i64,
    credential_expires_at_ms: Option<i64>,
    now_ms: i64,
) -> i64 {
    let until_credential_expires =
        credential_expires_at_ms.map(|expires_at| expires_at.saturating_sub(now_ms).max(0));
    match (reauth_ms_max > 0, until_credential_expires) {
        (true, Some(left)) => left.min(reauth_ms_max),
        (true, None) => reauth_ms_max,
        (false, Some(left)) => left,
        (false, None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::MOCK_SALT_BYTES;
    use crate::security::scram::tests::{credential, mock_key};

    #[test]
    fn session_lifetime_follows_kip_368() {
        // (connections.max.reauth.ms, credential expiry, now) -> lifetime
        let table = [
            (0, None, 1_000, 0),
            (60_000, None, 1_000, 60_000),
            (0, Some(31_000), 1_000, 30_000),
            (60_000, Some(31_000), 1_000, 30_000),
            (10_000, Some(31_000), 1_000, 10_000),
            // An expiry in the past gives 0, never a negative lifetime.
            (60_000, Some(500), 1_000, 0),
            (0, Some(500), 1_000, 0),
            (i64::MAX, Some(i64::MAX), i64::MIN, i64::MAX),
        ];
        for (reauth, expiry, now, expected) in table {
            assert_eq!(
                session_lifetime_ms(reauth, expiry, now),
                expected,
                "{reauth} {expiry:?} {now}"
            );
        }
    }

    #[test]
    fn a_plain_check_can_move_to_a_blocking_thread_and_shows_no_secret() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<PlainCheck>();
        assert_send::<PlainVerdict>();
        let listener = ListenerSecurity::Sasl(Arc::new(
            SaslListener::new(SaslOptions {
                mechanisms: vec![Mechanism::Plain],
                ..SaslOptions::default()
            })
            .unwrap(),
        ));
        let mut session = Session::open(&listener, Principal::anonymous(), mock_key());
        assert_eq!(session.gate(ApiKey::SaslHandshake, 1, 0), Gate::Decode);
        assert_eq!(session.handshake("PLAIN", 1, 0).error_code, 0);
        assert_eq!(session.gate(ApiKey::SaslAuthenticate, 2, 0), Gate::Decode);
        let step = session.authenticate(b"\0alice\0hunter2", 0, |_, _| None, &[1; 18]);
        let shown = format!("{step:?} {session:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let Authenticate::CheckPlain(check) = step else {
            panic!("PLAIN needs its PBKDF2 check: {shown}");
        };
        // A second token while the check runs fails the exchange.
        let again = session.authenticate(b"\0alice\0x", 0, |_, _| None, &[1; 18]);
        assert!(matches!(
            again,
            Authenticate::Reply(AuthReply { close: true, .. })
        ));
        let verdict = std::thread::spawn(move || check.run(|_, _| None))
            .join()
            .unwrap();
        let reply = session.plain_checked(verdict, 0);
        assert_eq!(reply.error_code, ResponseError::IllegalSaslState.code());
        assert_eq!(session.phase(), Phase::Failed);
    }

    #[test]
    fn frames_are_bounded_until_authenticated_and_oversized_plain_fails_at_once() {
        let listener = ListenerSecurity::Sasl(Arc::new(
            SaslListener::new(SaslOptions {
                mechanisms: vec![Mechanism::Plain],
                ..SaslOptions::default()
            })
            .unwrap(),
        ));
        let mut session = Session::open(&listener, Principal::anonymous(), mock_key());
        assert_eq!(
            session.frame_bytes_max(),
            Some(UNAUTHENTICATED_FRAME_BYTES_MAX)
        );
        session.gate(ApiKey::SaslHandshake, 1, 0);
        session.handshake("PLAIN", 1, 0);
        assert_eq!(
            session.frame_bytes_max(),
            Some(UNAUTHENTICATED_FRAME_BYTES_MAX)
        );
        session.gate(ApiKey::SaslAuthenticate, 2, 0);
        let huge = vec![b'a'; plain::MESSAGE_MAX_BYTES + 1];
        let step = session.authenticate(&huge, 0, |_, _| None, &[1; 18]);
        let Authenticate::Reply(reply) = step else {
            panic!("an oversized PLAIN message must not reach the blocking pool");
        };
        assert_eq!(
            reply.error_code,
            ResponseError::SaslAuthenticationFailed.code()
        );
        assert!(reply.close);
        let plaintext = Session::open(
            &ListenerSecurity::Transport,
            Principal::anonymous(),
            mock_key(),
        );
        assert_eq!(plaintext.frame_bytes_max(), None);
    }

    /// A xorshift64 generator for the random sequences.
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

    /// Tokens a confused or hostile client might send: empty, garbage, well-formed
    /// client-firsts, client-finals with made-up proofs, PLAIN messages with wrong passwords.
    fn random_token(rng: &mut XorShift) -> Vec<u8> {
        let candidates: [&[u8]; 9] = [
            b"",
            b"n,,n=alice,r=abcdefgh",
            b"n,,n=mallory,r=abcdefgh",
            b"c=biws,r=abcdefgh,p=AAAA",
            b"y,,n=alice,r=x",
            b"\0alice\0wrong",
            b"\0\0",
            b"=2X,,,",
            b"\xff\xfe",
        ];
        let mut token = candidates[rng.below(candidates.len())].to_vec();
        if rng.below(3) == 0 && !token.is_empty() {
            let at = rng.below(token.len());
            token[at] = rng.next() as u8;
        }
        token
    }

    #[test]
    fn random_event_sequences_never_panic_and_never_authenticate_without_a_proof() {
        let salt = vec![3; MOCK_SALT_BYTES];
        let alice = [ScramMechanism::Sha256, ScramMechanism::Sha512]
            .map(|m| (m, credential(m, "alice-secret", &salt, 4096)));
        let lookup = |user: &str, mechanism: ScramMechanism| {
            (user == "alice")
                .then(|| alice.iter().find(|(m, _)| *m == mechanism))
                .flatten()
                .map(|(_, c)| c.clone())
        };
        let listener = ListenerSecurity::Sasl(Arc::new(
            SaslListener::new(SaslOptions {
                mechanisms: vec![
                    Mechanism::Scram(ScramMechanism::Sha512),
                    Mechanism::Scram(ScramMechanism::Sha256),
                    Mechanism::Plain,
                ],
                connections_max_reauth_ms: 5_000,
                ..SaslOptions::default()
            })
            .unwrap(),
        ));
        // Mostly the SASL requests, so that sequences get past the handshake.
        let keys = [
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
            ApiKey::SaslAuthenticate,
            ApiKey::SaslAuthenticate,
            ApiKey::SaslAuthenticate,
            ApiKey::Metadata,
            ApiKey::Produce,
        ];
        let names = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "GSSAPI", ""];
        let mut rng = XorShift(0x5e55_10a5_eed0_0001);
        let (mut handshakes, mut tokens) = (0, 0);
        for _ in 0..4000 {
            let mut session = Session::open(&listener, Principal::anonymous(), mock_key());
            let mut now_ms = 0;
            for _ in 0..12 {
                now_ms += rng.below(3_000) as i64;
                let random = [rng.next() as u8; 18];
                if session.framing() == Framing::LegacyToken {
                    let token = random_token(&mut rng);
                    tokens += 1;
                    if let Authenticate::CheckPlain(check) =
                        session.legacy_token(&token, now_ms, lookup, &random)
                    {
                        session.plain_checked(check.run(lookup), now_ms);
                    }
                    continue;
                }
                let key = match session.phase() {
                    // Most sequences start with a handshake, so they get to the tokens.
                    Phase::AwaitingHandshake if rng.below(4) != 0 => ApiKey::SaslHandshake,
                    _ => keys[rng.below(keys.len())],
                };
                // Mostly served versions (v0 handshakes switch to raw tokens), some not.
                let version = [0, 1, 1, 2, 2, 3, -1][rng.below(7)];
                if session.gate(key, version, now_ms) != Gate::Decode {
                    assert_eq!(session.phase(), Phase::Failed);
                    break;
                }
                match key {
                    ApiKey::SaslHandshake => {
                        handshakes += 1;
                        session.handshake(names[rng.below(names.len())], version, now_ms);
                    }
                    ApiKey::SaslAuthenticate => {
                        tokens += 1;
                        let token = random_token(&mut rng);
                        if let Authenticate::CheckPlain(check) =
                            session.authenticate(&token, now_ms, lookup, &random)
                        {
                            session.plain_checked(check.run(lookup), now_ms);
                        }
                    }
                    _ => {}
                }
                assert_ne!(
                    session.phase(),
                    Phase::Authenticated,
                    "authenticated without a proof"
                );
                assert!(session.principal().is_none());
            }
        }
        assert!(handshakes > 1000 && tokens > 400, "{handshakes} {tokens}");
    }
}
