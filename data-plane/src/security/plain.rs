//! SASL/PLAIN (RFC 4616) checked against the users' SCRAM credentials.
//!
//! The client sends its password in clear, once:
//!
//! ```text
//! [authzid] NUL authcid NUL passwd        (UTF-8; the server answers empty bytes)
//! ```
//!
//! Ferry stores no password, only SCRAM credentials, so a PLAIN password is checked by doing
//! what a SCRAM client would: PBKDF2 over it with the stored salt and iterations, then
//! `H(HMAC(SaltedPassword, "Client Key"))` compared with StoredKey in constant time. The
//! SCRAM-SHA-512 credential is used when the user has one, else the SCRAM-SHA-256 one. One
//! attempt costs a full PBKDF2 (up to [`ITERATIONS_MAX`](super::scram::ITERATIONS_MAX) rounds),
//! so the caller runs it on a blocking thread and rate-limits failures.
//!
//! Because the password crosses the wire, the connection layer offers PLAIN only on `SASL_SSL`
//! listeners. As in Kafka, an empty user or password and an authzid other than the user are
//! refused. A user who does not exist costs the same PBKDF2 (over the mock credential of
//! [`MockSaltKey`]) and gets the same error as a wrong password.

use super::Principal;
use super::scram::{self, MockSaltKey, ScramCredential, ScramMechanism, USER_NAME_MAX_BYTES};

/// The longest password accepted, in bytes.
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// The largest PLAIN message accepted, in bytes: an authzid and a user name of the maximum
/// length, a password of the maximum length and two NULs.
pub const MESSAGE_MAX_BYTES: usize = 2 * USER_NAME_MAX_BYTES + PASSWORD_MAX_BYTES + 2;

/// Why a PLAIN authentication failed. The connection layer answers each with
/// SASL_AUTHENTICATION_FAILED; no variant carries the password or a byte of the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    /// A message longer than [`MESSAGE_MAX_BYTES`].
    #[error("the PLAIN message is {0} bytes, longer than {MESSAGE_MAX_BYTES}")]
    MessageTooLarge(usize),
    /// A message that is not UTF-8.
    #[error("the PLAIN message is not UTF-8")]
    NotUtf8,
    /// Not exactly three fields separated by NUL.
    #[error("the PLAIN message must be authzid NUL user NUL password")]
    Malformed,
    /// An empty user name.
    #[error("the user name is empty")]
    UserNameEmpty,
    /// A user name longer than [`USER_NAME_MAX_BYTES`].
    #[error("the user name is {0} bytes, longer than {USER_NAME_MAX_BYTES}")]
    UserNameTooLong(usize),
    /// An empty password.
    #[error("the password is empty")]
    PasswordEmpty,
    /// A password longer than [`PASSWORD_MAX_BYTES`].
    #[error("the password is longer than {PASSWORD_MAX_BYTES} bytes")]
    PasswordTooLong,
    /// A non-empty authzid that is not the user name.
    #[error("the authorization id must be empty or equal to the user name")]
    AuthzidMismatch,
    /// A wrong password, or a user without a SCRAM credential: the same error for both.
    #[error("Invalid username or password")]
    AuthenticationFailed,
}

/// The three fields of a PLAIN message.
struct Message<'a> {
    user: &'a str,
    password: &'a str,
}

impl<'a> Message<'a> {
    fn parse(message: &'a [u8]) -> Result<Self, PlainError> {
        if message.len() > MESSAGE_MAX_BYTES {
            return Err(PlainError::MessageTooLarge(message.len()));
        }
        let text = std::str::from_utf8(message).map_err(|_| PlainError::NotUtf8)?;
        let mut fields = text.split('\0');
        let (Some(authzid), Some(user), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(PlainError::Malformed);
        };
        if user.is_empty() {
            return Err(PlainError::UserNameEmpty);
        }
        if user.len() > USER_NAME_MAX_BYTES {
            return Err(PlainError::UserNameTooLong(user.len()));
        }
        if password.is_empty() {
            return Err(PlainError::PasswordEmpty);
        }
        if password.len() > PASSWORD_MAX_BYTES {
            return Err(PlainError::PasswordTooLong);
        }
        if !authzid.is_empty() && authzid != user {
            return Err(PlainError::AuthzidMismatch);
        }
        Ok(Self { user, password })
    }
}

/// Checks one PLAIN message. `lookup` gives a user's credential for a mechanism; `mock_key` is
/// the process's [`MockSaltKey`]. Runs one PBKDF2 whenever the message is well formed.
pub fn authenticate(
    message: &[u8],
    lookup: impl Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    mock_key: &MockSaltKey,
) -> Result<Principal, PlainError> {
    let message = Message::parse(message)?;
    let found = ScramMechanism::ALL.into_iter().find_map(|mechanism| {
        lookup(message.user, mechanism).filter(|c| c.mechanism() == mechanism)
    });
    let (credential, known_user) = match found {
        Some(credential) => (credential, true),
        None => (
            mock_key.mock_credential(ScramMechanism::Sha512, message.user),
            false,
        ),
    };
    let matches = scram::password_matches(&credential, message.password.as_bytes());
    if !(matches && known_user) {
        return Err(PlainError::AuthenticationFailed);
    }
    Ok(Principal::user(message.user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::tests::{credential, mock_key};

    fn salt() -> Vec<u8> {
        vec![9; scram::MOCK_SALT_BYTES]
    }

    /// alice has both credentials, with different passwords so the test sees which one was
    /// used; bob has only SCRAM-SHA-256.
    fn lookup(user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        match (user, mechanism) {
            ("alice", ScramMechanism::Sha512) => {
                Some(credential(mechanism, "alice-512", &salt(), 4096))
            }
            ("alice", ScramMechanism::Sha256) => {
                Some(credential(mechanism, "alice-256", &salt(), 4096))
            }
            ("bob", ScramMechanism::Sha256) => Some(credential(mechanism, "bob-pw", &salt(), 4096)),
            _ => None,
        }
    }

    #[test]
    fn plain_messages() {
        let oversized = [vec![0u8], vec![b'a'; MESSAGE_MAX_BYTES]].concat();
        let long_user = format!("\0{}\0pw", "u".repeat(USER_NAME_MAX_BYTES + 1));
        let long_password = format!("\0alice\0{}", "p".repeat(PASSWORD_MAX_BYTES + 1));
        let table: Vec<(&[u8], Result<Principal, PlainError>)> = vec![
            // SHA-512 is preferred when the user has both.
            (b"\0alice\0alice-512", Ok(Principal::user("alice"))),
            (b"\0alice\0alice-256", Err(PlainError::AuthenticationFailed)),
            (b"\0bob\0bob-pw", Ok(Principal::user("bob"))),
            (b"bob\0bob\0bob-pw", Ok(Principal::user("bob"))),
            (b"\0alice\0wrong", Err(PlainError::AuthenticationFailed)),
            (
                b"\0nobody\0alice-512",
                Err(PlainError::AuthenticationFailed),
            ),
            (b"admin\0bob\0bob-pw", Err(PlainError::AuthzidMismatch)),
            (b"\0\0pw", Err(PlainError::UserNameEmpty)),
            (b"\0alice\0", Err(PlainError::PasswordEmpty)),
            (b"alice\0alice-512", Err(PlainError::Malformed)),
            (b"\0alice\0alice-512\0", Err(PlainError::Malformed)),
            (b"\0alice\0alice-\xff", Err(PlainError::NotUtf8)),
            (
                long_user.as_bytes(),
                Err(PlainError::UserNameTooLong(USER_NAME_MAX_BYTES + 1)),
            ),
            (long_password.as_bytes(), Err(PlainError::PasswordTooLong)),
            (
                &oversized,
                Err(PlainError::MessageTooLarge(MESSAGE_MAX_BYTES + 1)),
            ),
        ];
        for (message, expected) in table {
            let shown = String::from_utf8_lossy(&message[..message.len().min(40)]).into_owned();
            assert_eq!(
                authenticate(message, lookup, &mock_key()),
                expected,
                "{shown:?}"
            );
        }
    }

    #[test]
    fn errors_do_not_echo_the_password() {
        let error = authenticate(b"\0alice\0hunter2", lookup, &mock_key()).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("hunter2"));
    }
}
