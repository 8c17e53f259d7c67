//! DescribeUserScramCredentials (key 50): which SCRAM mechanisms each user has, and their
//! iteration counts. Never a salt or a key.
//!
//! ```text
//! request:  users [name]?                       (null or empty: every user)
//! response: error_code, error_message?, results [user, error_code, error_message?,
//!           credential_infos [mechanism, iterations]]
//! ```
//!
//! Errors per user (Kafka's `ScramImage.describe`): a named user without credentials gets
//! RESOURCE_NOT_FOUND; a user named more than once gets DUPLICATE_RESOURCE, answered once.
//! The credentials come from the controllers' image this broker follows. A request naming more
//! than [`SCRAM_USERS_MAX`] users (more than a cluster may hold) gets INVALID_REQUEST as its
//! top-level error and no results.
//!
//! Authorization is not checked yet: every caller may describe every user, as every caller may
//! do everything today. Kafka requires DESCRIBE on the cluster; the enforcement piece adds it.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::controller::limits::SCRAM_USERS_MAX;
use crate::controller::{MetadataImage, StoredCredential};
use crate::security::scram::ScramMechanism;

impl Broker {
    /// Answers a DescribeUserScramCredentials request.
    pub(super) fn describe_user_scram_credentials(
        &self,
        request: &DescribeUserScramCredentialsRequest,
    ) -> DescribeUserScramCredentialsResponse {
        let image = self.authority.metadata_image();
        let results = match request.users.as_deref() {
            None | Some([]) => image
                .scram_users()
                .map(|(user, credentials)| described(user, credentials.iter()))
                .collect(),
            Some(users) if users.len() > SCRAM_USERS_MAX => {
                // No cluster has more users, and answering each name would let a small
                // request build a large response.
                let message = format!(
                    "the request names {} users, more than the {SCRAM_USERS_MAX} a cluster \
                     may hold",
                    users.len()
                );
                return DescribeUserScramCredentialsResponse::default()
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(message)));
            }
            Some(users) => named_users(&image, users.iter().map(|u| u.name.as_str())),
        };
        DescribeUserScramCredentialsResponse::default().with_results(results)
    }
}

/// One result per distinct name, in request order.
fn named_users<'a>(
    image: &MetadataImage,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Vec<DescribeUserScramCredentialsResult> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in names.clone() {
        *counts.entry(name).or_default() += 1;
    }
    let mut answered: HashMap<&str, ()> = HashMap::new();
    names
        .filter(|name| answered.insert(name, ()).is_none())
        .map(|name| {
            if counts[name] > 1 {
                return failed(
                    name,
                    ResponseError::DuplicateResource,
                    "Cannot describe SCRAM credentials for the same user twice in a single \
                     request",
                );
            }
            match image.scram_credentials(name) {
                Some(credentials) => described(name, credentials.iter()),
                None => failed(
                    name,
                    ResponseError::ResourceNotFound,
                    "Attempt to describe a user credential that does not exist",
                ),
            }
        })
        .collect()
}

/// A user's mechanisms and iteration counts: nothing else of the credentials leaves.
fn described<'a>(
    user: &str,
    credentials: impl Iterator<Item = (&'a ScramMechanism, &'a StoredCredential)>,
) -> DescribeUserScramCredentialsResult {
    let infos = credentials
        .map(|(mechanism, credential)| {
            CredentialInfo::default()
                .with_mechanism(mechanism.code())
                .with_iterations(i32::try_from(credential.iterations).unwrap_or(i32::MAX))
        })
        .collect();
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_credential_infos(infos)
}

fn failed(user: &str, error: ResponseError, message: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}
