//! AlterUserScramCredentials (key 51): deletes and sets users' SCRAM credentials through the
//! controllers.
//!
//! ```text
//! request:  deletions [name, mechanism], upsertions [name, mechanism, iterations, salt,
//!           salted_password]
//! response: results [user, error_code, error_message?]   (one per user)
//! ```
//!
//! The client salts and hashes the password (`SaltedPassword = PBKDF2(password, salt, i)`);
//! this handler turns each salted password into StoredKey and ServerKey
//! ([`ScramCredential::derive`], two HMACs and a hash, so no blocking thread is needed) and
//! proposes only those, so no password-equivalent reaches the metadata log. A salted password
//! that is not exactly the hash's length, a salt outside 16..=1024 bytes or iterations outside
//! 4096..=16384 get UNACCEPTABLE_CREDENTIAL; the controllers apply Kafka's other rules
//! ([`crate::controller::security`]) and commit the valid alterations atomically. A request
//! with more than [`SCRAM_ALTERATIONS_PER_REQUEST_MAX`] alterations is refused whole before
//! anything is derived.
//!
//! Authorization is not checked yet: every caller may alter every user, as every caller may do
//! everything today. Kafka requires ALTER on the cluster; the enforcement piece adds it here.

use std::collections::HashSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::controller::limits::SCRAM_ALTERATIONS_PER_REQUEST_MAX;
use crate::controller::{ApiError, ScramDeletion, ScramUpsertion, StoredCredential};
use crate::metadata::AdminError;
use crate::security::scram::{ScramCredential, ScramMechanism};

impl Broker {
    /// Answers an AlterUserScramCredentials request.
    pub(super) async fn alter_user_scram_credentials(
        &self,
        request: &AlterUserScramCredentialsRequest,
    ) -> AlterUserScramCredentialsResponse {
        let count = request.deletions.len() + request.upsertions.len();
        if count > SCRAM_ALTERATIONS_PER_REQUEST_MAX {
            // The user names are the request's own bytes and the message is shared, so the
            // answer to an oversized request allocates nothing per user beyond the result.
            let message = StrBytes::from_string(format!(
                "the request alters {count} credentials, more than \
                 {SCRAM_ALTERATIONS_PER_REQUEST_MAX} in one request"
            ));
            let mut seen = HashSet::new();
            let results = request
                .deletions
                .iter()
                .map(|d| &d.name)
                .chain(request.upsertions.iter().map(|u| &u.name))
                .filter(|name| seen.insert(name.as_str()))
                .map(|name| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(name.clone())
                        .with_error_code(ResponseError::PolicyViolation.code())
                        .with_error_message(Some(message.clone()))
                })
                .collect();
            return AlterUserScramCredentialsResponse::default().with_results(results);
        }
        let deletions = request
            .deletions
            .iter()
            .map(|d| ScramDeletion {
                name: d.name.to_string(),
                mechanism: d.mechanism,
            })
            .collect();
        let upsertions = request.upsertions.iter().map(derive).collect();
        let results = match self
            .authority
            .alter_scram_credentials(deletions, upsertions)
            .await
        {
            Ok(results) => results,
            Err(e) => users_in_order(request)
                .into_iter()
                .map(|user| (user, Err(e.clone())))
                .collect(),
        };
        response(results)
    }
}

/// The upsertion with its keys derived from the salted password, which goes no further.
fn derive(upsertion: &ScramCredentialUpsertion) -> ScramUpsertion {
    let credential = match ScramMechanism::from_code(upsertion.mechanism) {
        None => Err(ApiError::new(
            ResponseError::UnsupportedSaslMechanism,
            format!("Unknown SCRAM mechanism {}", upsertion.mechanism),
        )),
        Some(mechanism) => {
            // A negative count is refused like any count below the minimum.
            let iterations = u32::try_from(upsertion.iterations).unwrap_or(0);
            ScramCredential::derive(
                mechanism,
                &upsertion.salted_password,
                &upsertion.salt,
                iterations,
            )
            .map(|c| StoredCredential::from_credential(&c))
            .map_err(|e| ApiError::new(ResponseError::UnacceptableCredential, e.to_string()))
        }
    };
    ScramUpsertion {
        name: upsertion.name.to_string(),
        mechanism: upsertion.mechanism,
        credential,
    }
}

/// Each user named in the request, once, deletions first.
fn users_in_order(request: &AlterUserScramCredentialsRequest) -> Vec<String> {
    let mut seen = HashSet::new();
    request
        .deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(request.upsertions.iter().map(|u| u.name.as_str()))
        .filter(|name| seen.insert(*name))
        .map(str::to_string)
        .collect()
}

fn response(results: Vec<(String, Result<(), AdminError>)>) -> AlterUserScramCredentialsResponse {
    let results = results
        .into_iter()
        .map(|(user, result)| {
            let entry =
                AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match result {
                Ok(()) => entry,
                Err(e) => entry
                    .with_error_code(e.code.code())
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
