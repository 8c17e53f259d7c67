//! `security`: the commands that change SCRAM credentials and ACLs (AlterUserScramCredentials,
//! CreateAcls, DeleteAcls), executed like every other command ([`super::execute()`]).
//!
//! The proposing shell (the broker handler) checks what it can on its own and derives the
//! SCRAM keys, so a command carries no secret (see [`super::command::ScramUpsertion`]);
//! everything a command carries is checked again here, against the image, before any record
//! is written. Each command writes its valid part as one batch, so it is applied atomically.
//!
//! # Rules (Kafka's `ScramControlManager` and `AclControlManager`)
//!
//! - A user named more than once in one AlterScramCredentials (in deletions, upsertions, or
//!   both, whatever the mechanisms) gets DUPLICATE_RESOURCE and none of its alterations apply.
//! - An empty (or too long) user name gets UNACCEPTABLE_CREDENTIAL; a mechanism code other
//!   than 1 or 2 gets UNSUPPORTED_SASL_MECHANISM; deleting a credential that does not exist
//!   gets RESOURCE_NOT_FOUND; an iteration count outside 4096..=16384, a salt outside
//!   16..=1024 bytes or keys of the wrong length get UNACCEPTABLE_CREDENTIAL.
//! - A new user past [`SCRAM_USERS_MAX`] gets POLICY_VIOLATION (Kafka sets no bound).
//! - CreateAcls: a binding already held (or added earlier in the same request) succeeds and
//!   writes nothing; past [`ACLS_MAX`](super::limits::ACLS_MAX) a new one gets
//!   POLICY_VIOLATION ([`acl::plan_creations`]).
//! - DeleteAcls: every binding some filter matches is removed once, all in one batch.
//! - A request over [`SCRAM_ALTERATIONS_PER_REQUEST_MAX`] or
//!   [`ACL_CHANGES_PER_REQUEST_MAX`] is refused whole ([`precheck`](super::precheck)).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use super::command::{ApiError, CommandResult, ScramDeletion, ScramUpsertion};
use super::image::MetadataImage;
use super::limits::{
    ACL_CHANGES_PER_REQUEST_MAX, SCRAM_ALTERATIONS_PER_REQUEST_MAX, SCRAM_USERS_MAX,
};
use super::records::Record;
use crate::security::acl::{self, AclBinding, AclFilter, Created};
use crate::security::scram::{self, ScramMechanism};

/// Refuses a whole request over its per-request bound, with one error per entry (per user
/// for SCRAM), or `None` when it is within bounds.
pub(super) fn precheck_scram(
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
) -> Option<CommandResult> {
    let count = deletions.len() + upsertions.len();
    if count <= SCRAM_ALTERATIONS_PER_REQUEST_MAX {
        return None;
    }
    let error = ApiError::new(
        ResponseError::PolicyViolation,
        format!(
            "the request alters {count} credentials, more than \
             {SCRAM_ALTERATIONS_PER_REQUEST_MAX} in one request"
        ),
    );
    let users = users_in_order(deletions, upsertions);
    Some(CommandResult::AlterScramCredentials(
        users.into_iter().map(|u| (u, Err(error.clone()))).collect(),
    ))
}

/// See [`precheck_scram`]; for CreateAcls (`count` bindings) and DeleteAcls (`count`
/// filters), as the error to give every entry.
pub(super) fn acl_request_too_large(count: usize) -> Option<ApiError> {
    (count > ACL_CHANGES_PER_REQUEST_MAX).then(|| {
        ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "the request carries {count} ACL changes, more than \
                 {ACL_CHANGES_PER_REQUEST_MAX} in one request"
            ),
        )
    })
}

/// Each user named in the request, once, in the order of first appearance.
fn users_in_order(deletions: &[ScramDeletion], upsertions: &[ScramUpsertion]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    deletions
        .iter()
        .map(|d| &d.name)
        .chain(upsertions.iter().map(|u| &u.name))
        .filter(|name| seen.insert(name.as_str()))
        .cloned()
        .collect()
}

fn unacceptable(message: impl Into<String>) -> ApiError {
    ApiError::new(ResponseError::UnacceptableCredential, message)
}

/// The user name check: 1 to 256 bytes.
fn check_name(name: &str) -> Result<(), ApiError> {
    scram::validate_user_name(name).map_err(|e| unacceptable(e.to_string()))
}

fn mechanism(code: i8) -> Result<ScramMechanism, ApiError> {
    ScramMechanism::from_code(code).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnsupportedSaslMechanism,
            format!("Unknown SCRAM mechanism {code}"),
        )
    })
}

/// Executes AlterScramCredentials. See the module docs for the rules.
pub(super) fn alter_scram_credentials(
    image: &MetadataImage,
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
    out: &mut Vec<Record>,
) -> CommandResult {
    if let Some(refused) = precheck_scram(deletions, upsertions) {
        return refused;
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(upsertions.iter().map(|u| u.name.as_str()))
    {
        *counts.entry(name).or_default() += 1;
    }
    let duplicate = |name: &str| counts[name] > 1;
    let mut errors: BTreeMap<&str, ApiError> = BTreeMap::new();
    for name in counts.keys().filter(|n| duplicate(n)) {
        let error = ApiError::new(
            ResponseError::DuplicateResource,
            "A user credential cannot be altered twice in the same request",
        );
        errors.insert(name, error);
    }
    let mut records = Vec::new();
    for deletion in deletions.iter().filter(|d| !duplicate(&d.name)) {
        match check_deletion(image, deletion) {
            Ok(mechanism) => records.push(Record::RemoveScramCredential {
                name: deletion.name.clone(),
                mechanism,
            }),
            Err(e) => {
                errors.insert(&deletion.name, e);
            }
        }
    }
    let mut users = image.scram_user_count();
    for upsertion in upsertions.iter().filter(|u| !duplicate(&u.name)) {
        let is_new_user = image.scram_credentials(&upsertion.name).is_none();
        match check_upsertion(upsertion, is_new_user, users) {
            Ok(record) => {
                users += usize::from(is_new_user);
                records.push(record);
            }
            Err(e) => {
                errors.insert(&upsertion.name, e);
            }
        }
    }
    out.extend(records);
    let results = users_in_order(deletions, upsertions)
        .into_iter()
        .map(|user| {
            let result = errors.get(user.as_str()).cloned().map_or(Ok(()), Err);
            (user, result)
        })
        .collect();
    CommandResult::AlterScramCredentials(results)
}

fn check_deletion(
    image: &MetadataImage,
    deletion: &ScramDeletion,
) -> Result<ScramMechanism, ApiError> {
    check_name(&deletion.name)?;
    let mechanism = mechanism(deletion.mechanism)?;
    if image.scram_credential(&deletion.name, mechanism).is_none() {
        return Err(ApiError::new(
            ResponseError::ResourceNotFound,
            "Attempt to delete a user credential that does not exist",
        ));
    }
    Ok(mechanism)
}

fn check_upsertion(
    upsertion: &ScramUpsertion,
    is_new_user: bool,
    users: usize,
) -> Result<Record, ApiError> {
    check_name(&upsertion.name)?;
    let mechanism = mechanism(upsertion.mechanism)?;
    let stored = upsertion.credential.clone()?;
    // The shell derived it, but the command is what the log keeps: check it again.
    stored
        .to_credential(mechanism)
        .map_err(|e| unacceptable(e.to_string()))?;
    if is_new_user && users >= SCRAM_USERS_MAX {
        return Err(ApiError::new(
            ResponseError::PolicyViolation,
            format!("the cluster already has {SCRAM_USERS_MAX} SCRAM users, the most it may hold"),
        ));
    }
    Ok(Record::ScramCredential {
        name: upsertion.name.clone(),
        mechanism,
        credential: stored,
    })
}

/// Executes CreateAcls: writes the new bindings, answers every one.
pub(super) fn create_acls(
    image: &MetadataImage,
    bindings: &[AclBinding],
    out: &mut Vec<Record>,
) -> CommandResult {
    if let Some(error) = acl_request_too_large(bindings.len()) {
        return CommandResult::CreateAcls(bindings.iter().map(|_| Err(error.clone())).collect());
    }
    let results = acl::plan_creations(image.acls(), bindings)
        .into_iter()
        .map(|planned| match planned {
            Ok(Created::Added(binding)) => {
                out.push(Record::Acl { binding });
                Ok(())
            }
            Ok(Created::Duplicate) => Ok(()),
            Err(e) => Err(ApiError::new(e.code(), e.to_string())),
        })
        .collect();
    CommandResult::CreateAcls(results)
}

/// Executes DeleteAcls: removes every matched binding once, answers each filter.
pub(super) fn delete_acls(
    image: &MetadataImage,
    filters: &[AclFilter],
    out: &mut Vec<Record>,
) -> CommandResult {
    if let Some(error) = acl_request_too_large(filters.len()) {
        return CommandResult::DeleteAcls(Err(error));
    }
    let plan = acl::plan_deletions(image.acls(), filters);
    out.extend(
        acl::removals(&plan)
            .into_iter()
            .map(|binding| Record::RemoveAcl {
                binding: binding.clone(),
            }),
    );
    let matched = plan
        .into_iter()
        .map(|bindings| bindings.into_iter().cloned().collect())
        .collect();
    CommandResult::DeleteAcls(Ok(matched))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::command::Command;
    use crate::controller::limits::Limits;
    use crate::controller::precheck;
    use crate::controller::records::StoredCredential;
    use crate::controller::testing::Cluster;

    fn credential(iterations: u32) -> StoredCredential {
        StoredCredential {
            salt: vec![7; 16],
            stored_key: vec![1; 64],
            server_key: vec![2; 64],
            iterations,
        }
    }

    fn upsert(name: String) -> ScramUpsertion {
        ScramUpsertion {
            name,
            mechanism: ScramMechanism::Sha512.code(),
            credential: Ok(credential(4096)),
        }
    }

    fn alter(upsertions: Vec<ScramUpsertion>) -> Command {
        Command::AlterScramCredentials {
            deletions: vec![],
            upsertions,
        }
    }

    #[test]
    fn users_past_the_bound_are_refused_and_existing_users_still_change() {
        let mut cluster = Cluster::new();
        let per_request = SCRAM_ALTERATIONS_PER_REQUEST_MAX;
        for batch in 0..SCRAM_USERS_MAX / per_request {
            let names = (0..per_request).map(|i| format!("user-{}", batch * per_request + i));
            let (records, _) = cluster.run(alter(names.map(upsert).collect()));
            assert_eq!(records.len(), per_request);
        }
        assert_eq!(cluster.image.scram_user_count(), SCRAM_USERS_MAX);
        let (records, result) = cluster.run(alter(vec![
            upsert("one-too-many".into()),
            upsert("user-0".into()),
        ]));
        let CommandResult::AlterScramCredentials(results) = result else {
            panic!("{result:?}");
        };
        assert_eq!(
            results[0].1.as_ref().unwrap_err().code,
            ResponseError::PolicyViolation.code()
        );
        assert_eq!(results[1].1, Ok(()));
        assert_eq!(
            records.len(),
            1,
            "only the existing user's credential is written"
        );
    }

    #[test]
    fn requests_over_the_per_request_bounds_are_refused_whole_before_the_log() {
        let too_many = SCRAM_ALTERATIONS_PER_REQUEST_MAX + 1;
        let command = alter((0..too_many).map(|i| upsert(format!("u{i}"))).collect());
        let Some(CommandResult::AlterScramCredentials(results)) =
            precheck(&command, &Limits::default())
        else {
            panic!("not refused early");
        };
        assert_eq!(results.len(), too_many);
        assert!(results.iter().all(|(_, r)| r.is_err()));
        let mut cluster = Cluster::new();
        let (records, _) = cluster.run(command);
        assert!(records.is_empty(), "execute applies the same bound");

        let binding = crate::security::acl::validate_new_binding(&acl::NewAcl {
            resource_type: 2,
            resource_name: "t",
            pattern_type: 3,
            principal: "User:a",
            host: "*",
            operation: 3,
            permission: 3,
        })
        .unwrap();
        let command = Command::CreateAcls {
            bindings: vec![binding; ACL_CHANGES_PER_REQUEST_MAX + 1],
        };
        assert!(precheck(&command, &Limits::default()).is_some());
        let (records, _) = cluster.run(command);
        assert!(records.is_empty());
        let command = Command::DeleteAcls {
            filters: vec![AclFilter::any(); ACL_CHANGES_PER_REQUEST_MAX + 1],
        };
        assert!(matches!(
            precheck(&command, &Limits::default()),
            Some(CommandResult::DeleteAcls(Err(_)))
        ));
    }

    #[test]
    fn no_key_reaches_the_debug_output_of_a_command_or_record() {
        let command = alter(vec![upsert("alice".into())]);
        let text = format!("{command:?}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains("[1, 1"), "{text}");
        let mut cluster = Cluster::new();
        let (records, _) = cluster.run(command);
        let text = format!("{records:?}");
        assert!(!text.contains("[2, 2"), "{text}");
    }
}
