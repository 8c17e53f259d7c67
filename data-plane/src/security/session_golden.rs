//! Golden scripts for the connection security state machine (test-only).
//!
//! Each script in `data-plane/tests/golden/session/` sets up a listener and users, then plays
//! one client's requests against a [`Session`] the way the connection loop will: every request
//! first goes through [`Session::gate`] from its header, then (when the gate lets it through)
//! to the handshake, the token exchange or "the broker". SCRAM tokens come from the RFC 5802
//! test client of `scram::tests` with a fixed client nonce; server nonces come from a counter,
//! so outputs are stable. PLAIN checks run inline where the shell would use a blocking thread.
//! The format is in [`crate::golden`].
//!
//! # Commands
//!
//! ```text
//! listener sasl [mechanisms=A,B] [tls=true|false] [plain-without-tls] [reauth-ms=N] [api-versions-max=N]
//! listener transport [principal=User:x]   a listener without SASL (default User:ANONYMOUS)
//! user <name> <password>                  SCRAM-SHA-256 and SCRAM-SHA-512 credentials
//! connect                                 a new connection (listener, users, clock, client kept)
//! at <ms>                                 the clock
//! request <Api> [v=N]                     any request: the gate, then "to the broker as ..."
//! handshake <mechanism> [v=1]             a SaslHandshake
//! scram <mechanism> <user> <password>     the client the next client-first/final come from
//! send client-first|client-final [v=2]    a SaslAuthenticate carrying the client's next message
//! send raw=<text> [v=2]                   a SaslAuthenticate carrying these bytes
//! send plain user=<u> password=<p> [authzid=<a>] [v=2]
//! legacy client-first|client-final|raw=<text>|plain ...   a raw token frame (after handshake v0)
//! state                                   phase, principal, mechanism, expiry
//! ```
//!
//! # Output
//!
//! `gate: decode | close (<reason>) | illegal-state`, then the reply (`handshake: ...`,
//! `reply: ...` or `legacy: ...`), then `state: ...`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::Principal;
use super::scram::tests::{Client, credential, mock_key};
use super::scram::{MOCK_SALT_BYTES, ScramCredential, ScramMechanism};
use super::session::{
    AuthReply, Authenticate, Framing, Gate, ListenerSecurity, Mechanism, Phase, SaslListener,
    SaslOptions, Session,
};
use crate::golden::{self, Command, Driver};

/// The client nonce of every SCRAM client in the scripts (RFC 5802's example).
const CLIENT_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

/// One script's listener, users, clock and connection.
struct SessionDriver {
    /// The listener the connections are on.
    listener: ListenerSecurity,
    /// The principal a listener without SASL gives.
    transport_principal: Principal,
    /// (user, mechanism) to credential.
    users: BTreeMap<(String, ScramMechanism), ScramCredential>,
    /// The clock, in ms.
    now_ms: i64,
    /// The server-nonce counter.
    nonces: u8,
    /// The current connection.
    session: Session,
    /// The SCRAM client of the current exchange.
    client: Option<Client>,
    /// The last challenge the client received (for client-final).
    last_challenge: Vec<u8>,
}

impl SessionDriver {
    fn new() -> Self {
        let listener = ListenerSecurity::Transport;
        let transport_principal = Principal::anonymous();
        Self {
            session: Session::open(&listener, transport_principal.clone(), mock_key()),
            listener,
            transport_principal,
            users: BTreeMap::new(),
            now_ms: 0,
            nonces: 0,
            client: None,
            last_challenge: Vec::new(),
        }
    }

    fn connect(&mut self) {
        self.session = Session::open(&self.listener, self.transport_principal.clone(), mock_key());
        self.last_challenge.clear();
    }

    fn listener(&mut self, command: &Command) -> Result<String, String> {
        match command.arg(0, "sasl|transport")? {
            "transport" => {
                self.listener = ListenerSecurity::Transport;
                if let Some(principal) = command.named.get("principal") {
                    self.transport_principal =
                        Principal::parse(principal).map_err(|e| e.to_string())?;
                }
            }
            "sasl" => {
                let mut options = SaslOptions::default();
                if let Some(names) = command.list::<String>("mechanisms")? {
                    options.mechanisms = names
                        .iter()
                        .map(|n| Mechanism::from_name(n).ok_or(format!("{n}: no such mechanism")))
                        .collect::<Result<_, _>>()?;
                }
                if let Some(tls) = command.get("tls")? {
                    options.tls = tls;
                }
                options.plain_without_tls = command.flag("plain-without-tls");
                if let Some(ms) = command.get("reauth-ms")? {
                    options.connections_max_reauth_ms = ms;
                }
                if let Some(max) = command.get("api-versions-max")? {
                    options.api_versions_before_handshake_max = max;
                }
                match SaslListener::new(options) {
                    Ok(sasl) => self.listener = ListenerSecurity::Sasl(Arc::new(sasl)),
                    Err(e) => return Ok(format!("error: {e}")),
                }
            }
            other => return Err(format!("listener {other}: unknown")),
        }
        self.connect();
        Ok(match &self.listener {
            ListenerSecurity::Transport => format!("transport as {}", self.transport_principal),
            ListenerSecurity::Sasl(sasl) => {
                let names: Vec<&str> = sasl.offered().iter().map(|m| m.name()).collect();
                format!("sasl offering [{}]", names.join(" "))
            }
        })
    }

    fn user(&mut self, command: &Command) -> Result<String, String> {
        let name = command.arg(0, "name")?;
        let password = command.arg(1, "password")?;
        let salt: Vec<u8> = (0..MOCK_SALT_BYTES as u8).collect();
        for mechanism in ScramMechanism::ALL {
            let cred = credential(mechanism, password, &salt, 4096);
            self.users.insert((name.to_string(), mechanism), cred);
        }
        Ok("ok".to_string())
    }

    fn version(command: &Command, default: i16) -> Result<i16, String> {
        Ok(command.get("v")?.unwrap_or(default))
    }

    fn render_gate(gate: &Gate) -> String {
        match gate {
            Gate::Decode => "gate: decode".to_string(),
            Gate::Close(reason) => format!("gate: close ({reason})"),
            Gate::IllegalState => "gate: illegal-state (ILLEGAL_SASL_STATE response, close)".into(),
        }
    }

    fn render_state(&self) -> String {
        let session = &self.session;
        let mut out = format!("state: {:?}", session.phase());
        if let Some(principal) = session.principal() {
            out.push_str(&format!(" {principal}"));
        }
        if let Some(mechanism) = session.mechanism() {
            out.push_str(&format!(" {mechanism}"));
        }
        if session.phase() == Phase::Authenticated {
            match session.expires_at_ms() {
                Some(at) => out.push_str(&format!(" expires_at={at}")),
                None => out.push_str(" expires_at=never"),
            }
        }
        if session.framing() == Framing::LegacyToken {
            out.push_str(" (raw token frames)");
        }
        out
    }

    fn error_name(code: i16) -> String {
        if code == 0 {
            return "NONE".to_string();
        }
        ResponseError::try_from_code(code)
            .map(|e| format!("{e:?}"))
            .unwrap_or_else(|| format!("code {code}"))
    }

    fn render_reply(reply: &AuthReply) -> String {
        let mut out = format!(
            "reply: error={} lifetime_ms={} close={} bytes={:?}",
            Self::error_name(reply.error_code),
            reply.session_lifetime_ms,
            reply.close,
            String::from_utf8_lossy(&reply.bytes)
        );
        if let Some(message) = &reply.error_message {
            out.push_str(&format!("\nmessage: {message}"));
        }
        out
    }

    /// The token a `send`/`legacy` command carries.
    fn token(&mut self, command: &Command) -> Result<Vec<u8>, String> {
        if let Some(raw) = command.named.get("raw") {
            return Ok(raw.clone().into_bytes());
        }
        match command.arg(0, "token")? {
            "client-first" => {
                let client = self.client.as_mut().ok_or("no scram client")?;
                Ok(client.first())
            }
            "client-final" => {
                let client = self.client.as_mut().ok_or("no scram client")?;
                if !self.last_challenge.starts_with(b"r=") {
                    return Err("client-final needs a server-first to answer".into());
                }
                Ok(client.final_message(&self.last_challenge))
            }
            "plain" => {
                let get = |key: &str| command.named.get(key).cloned().unwrap_or_default();
                Ok(
                    format!("{}\0{}\0{}", get("authzid"), get("user"), get("password"))
                        .into_bytes(),
                )
            }
            other => Err(format!("{other}: not a token")),
        }
    }

    /// Feeds a token to the session in `framing` and renders the outcome.
    fn feed(&mut self, framing: Framing, token: &[u8]) -> String {
        self.nonces = self.nonces.wrapping_add(1);
        let nonce_random = [self.nonces; 18];
        let users = self.users.clone();
        let lookup = move |user: &str, mechanism: ScramMechanism| {
            users.get(&(user.to_string(), mechanism)).cloned()
        };
        let step = match framing {
            Framing::Requests => {
                self.session
                    .authenticate(token, self.now_ms, &lookup, &nonce_random)
            }
            Framing::LegacyToken => {
                self.session
                    .legacy_token(token, self.now_ms, &lookup, &nonce_random)
            }
        };
        let mut out = String::new();
        let reply = match step {
            Authenticate::Reply(reply) => reply,
            Authenticate::CheckPlain(check) => {
                out.push_str("plain: PBKDF2 check handed to the blocking pool\n");
                let verdict = check.run(&lookup);
                self.session.plain_checked(verdict, self.now_ms)
            }
        };
        self.last_challenge = reply.bytes.clone();
        match framing {
            Framing::Requests => out.push_str(&Self::render_reply(&reply)),
            Framing::LegacyToken => {
                match reply.legacy_frame() {
                    Some(frame) => out.push_str(&format!(
                        "legacy: write frame {:?}",
                        String::from_utf8_lossy(frame)
                    )),
                    None => out.push_str("legacy: write nothing"),
                }
                if reply.close {
                    out.push_str(", close");
                }
            }
        }
        out
    }
}

impl Driver for SessionDriver {
    fn run(&mut self, command: &Command) -> Result<String, String> {
        let body = match command.name.as_str() {
            "listener" => return self.listener(command),
            "user" => return self.user(command),
            "connect" => {
                self.connect();
                return Ok(self.render_state());
            }
            "at" => {
                self.now_ms = command.arg(0, "ms")?.parse().map_err(|_| "at: bad ms")?;
                return Ok(format!("now={}", self.now_ms));
            }
            "state" => return Ok(self.render_state()),
            "scram" => {
                let mechanism = command.arg(0, "mechanism")?;
                let mechanism = ScramMechanism::from_name(mechanism)
                    .ok_or(format!("{mechanism}: not SCRAM"))?;
                let user = command.arg(1, "user")?;
                let password = command.arg(2, "password")?;
                self.client = Some(Client::new(mechanism, user, password, CLIENT_NONCE));
                return Ok("ok".to_string());
            }
            "request" => {
                let name = command.arg(0, "api")?;
                let api_key = api_key(name)?;
                let version = Self::version(command, 0)?;
                let gate = self.session.gate(api_key, version, self.now_ms);
                let mut out = Self::render_gate(&gate);
                if gate == Gate::Decode {
                    match self.session.principal() {
                        Some(principal) => out.push_str(&format!(", to the broker as {principal}")),
                        None => out.push_str(", answered before authentication"),
                    }
                }
                out
            }
            "handshake" => {
                let mechanism = command.arg(0, "mechanism")?;
                let version = Self::version(command, 1)?;
                let gate = self
                    .session
                    .gate(ApiKey::SaslHandshake, version, self.now_ms);
                let mut out = Self::render_gate(&gate);
                if gate == Gate::Decode {
                    let reply = self.session.handshake(mechanism, version, self.now_ms);
                    out.push_str(&format!(
                        "\nhandshake: error={} mechanisms=[{}] close={}",
                        Self::error_name(reply.error_code),
                        reply.mechanisms.join(" "),
                        reply.close
                    ));
                }
                out
            }
            "send" => {
                let version = Self::version(command, 2)?;
                let token = self.token(command)?;
                let gate = self
                    .session
                    .gate(ApiKey::SaslAuthenticate, version, self.now_ms);
                let mut out = Self::render_gate(&gate);
                if gate == Gate::Decode {
                    out.push('\n');
                    out.push_str(&self.feed(Framing::Requests, &token));
                }
                out
            }
            "legacy" => {
                let token = self.token(command)?;
                self.feed(Framing::LegacyToken, &token)
            }
            other => return Err(format!("{other}: unknown command")),
        };
        Ok(format!("{body}\n{}", self.render_state()))
    }
}

/// An API key from its Rust name (`Metadata`, `SaslHandshake`, ...).
fn api_key(name: &str) -> Result<ApiKey, String> {
    (0..=i16::from(u8::MAX))
        .filter_map(|raw| ApiKey::try_from(raw).ok())
        .find(|key| format!("{key:?}") == name)
        .ok_or(format!("{name}: not an API"))
}

#[test]
fn session_scripts() {
    golden::run_dir("session", || Box::new(SessionDriver::new()));
}
