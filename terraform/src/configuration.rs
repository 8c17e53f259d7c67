//! The `ferry_configuration` resource (like `aws_msk_configuration`): named broker properties
//! with immutable revisions, which `ferry_cluster`s reference by id and revision.
//!
//! # Expected flow
//!
//! - create: CreateConfiguration; `latest_revision` is 1.
//! - update: a change to `server_properties` or `description` is UpdateConfiguration, which
//!   adds the next revision (`latest_revision` goes up). Clusters keep the revision they name
//!   until their `configuration_revision` is changed (MSK's rule: a revision is never applied
//!   behind the user's back). `name` and `kafka_versions` cannot change: a change replaces the
//!   configuration.
//! - delete: DeleteConfiguration; while a cluster references the configuration the API refuses
//!   (CONFIGURATION_IN_USE) and its message is the diagnostic.
//! - read: GetConfiguration plus GetConfigurationRevision of the latest revision, so a revision
//!   added outside Terraform shows up as a diff on `server_properties`.
//! - import: by id (`cfg-...`) or name.
//!
//! # Guarantees
//!
//! No perpetual diff: the API returns the properties text exactly as given; an empty
//! description or version list is kept null when the configuration left it unset.

use ferry_proto::controlplane::v1 as pb;
use rmpv::Value;

use crate::api::Client;
use crate::cluster::{Applied, Plan};
use crate::diag;
use crate::proto::tfplugin6::Diagnostic;
use crate::value::{self as v, get, set};

/// Attributes a change of which replaces the configuration.
pub const REPLACE_ON_CHANGE: [&str; 2] = ["name", "kafka_versions"];

/// Checks the configuration without calling the API.
pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(name) = v::as_str(get(config, "name")) {
        let ok = (1..=64).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            out.push(diag::error_at(
                diag::attribute("name"),
                "Invalid ferry_configuration configuration",
                format!("name: must be 1-64 letters, digits and dashes, not {name:?}"),
            ));
        }
    }
    out
}

/// Plans the change from `prior` to `proposed` (either may be null).
pub fn plan(prior: &Value, proposed: &Value) -> Plan {
    let mut result = Plan {
        planned: proposed.clone(),
        requires_replace: Vec::new(),
        diagnostics: Vec::new(),
    };
    if proposed.is_nil() {
        return result;
    }
    let planned = &mut result.planned;
    if prior.is_nil() {
        set(planned, "id", v::unknown());
        set(planned, "latest_revision", v::unknown());
        return result;
    }
    for name in REPLACE_ON_CHANGE {
        if !same(get(prior, name), get(planned, name)) {
            result.requires_replace.push(diag::attribute(name));
        }
    }
    if !result.requires_replace.is_empty() {
        set(planned, "id", v::unknown());
        set(planned, "latest_revision", v::unknown());
    } else if revision_changes(prior, planned) {
        set(planned, "latest_revision", v::unknown());
    }
    result
}

/// Whether going from `prior` to `planned` adds a revision.
fn revision_changes(prior: &Value, planned: &Value) -> bool {
    !same(
        get(prior, "server_properties"),
        get(planned, "server_properties"),
    ) || !same(get(prior, "description"), get(planned, "description"))
}

/// Null and empty are the same to the API; unknown differs from everything.
fn same(a: &Value, b: &Value) -> bool {
    if v::is_unknown(a) || v::is_unknown(b) {
        return false;
    }
    let empty =
        |x: &Value| x.is_nil() || x.as_str() == Some("") || x.as_array().is_some_and(Vec::is_empty);
    (empty(a) && empty(b)) || a == b
}

/// Applies a planned change.
pub async fn apply(client: &Client, prior: &Value, planned: &Value) -> Applied {
    if planned.is_nil() {
        return delete(client, prior).await;
    }
    let text = |name: &str| {
        v::as_str(get(planned, name))
            .unwrap_or_default()
            .to_string()
    };
    if prior.is_nil() {
        let summary = format!("Creating configuration {:?} failed", text("name"));
        let request = pb::CreateConfigurationRequest {
            name: text("name"),
            description: text("description"),
            kafka_versions: v::as_strings(get(planned, "kafka_versions")).unwrap_or_default(),
            server_properties: text("server_properties"),
        };
        return match client.create_configuration(request).await {
            Ok(created) => Applied {
                state: state_from(&created, &text("server_properties"), planned),
                diagnostics: vec![],
            },
            Err(e) => Applied {
                state: Value::Nil,
                diagnostics: e.diagnostics(&summary),
            },
        };
    }
    let id = v::as_str(get(prior, "id")).unwrap_or_default().to_string();
    if !revision_changes(prior, planned) {
        return Applied {
            state: planned.clone(),
            diagnostics: vec![],
        };
    }
    let request = pb::UpdateConfigurationRequest {
        configuration_id: id.clone(),
        description: text("description"),
        server_properties: text("server_properties"),
    };
    match client.update_configuration(request).await {
        Ok(updated) => Applied {
            state: state_from(&updated, &text("server_properties"), planned),
            diagnostics: vec![],
        },
        Err(e) => Applied {
            state: prior.clone(),
            diagnostics: e.diagnostics(&format!("Updating configuration {id} failed")),
        },
    }
}

async fn delete(client: &Client, prior: &Value) -> Applied {
    let id = v::as_str(get(prior, "id")).unwrap_or_default().to_string();
    match client.delete_configuration(&id).await {
        Ok(()) => Applied {
            state: Value::Nil,
            diagnostics: vec![],
        },
        Err(e) if e.is_not_found() => Applied {
            state: Value::Nil,
            diagnostics: vec![],
        },
        Err(e) => Applied {
            state: prior.clone(),
            diagnostics: e.diagnostics(&format!("Deleting configuration {id} failed")),
        },
    }
}

/// Refreshes `current` from the API; null when the configuration is gone.
pub async fn read(client: &Client, current: &Value) -> Result<Value, Vec<Diagnostic>> {
    let Some(id) = v::as_str(get(current, "id")).filter(|id| !id.is_empty()) else {
        return Ok(current.clone());
    };
    let summary = format!("Reading configuration {id} failed");
    let configuration = match client.get_configuration(id).await {
        Ok(configuration) => configuration,
        Err(e) if e.is_not_found() => return Ok(Value::Nil),
        Err(e) => return Err(e.diagnostics(&summary)),
    };
    fetch_state(client, &configuration, current, &summary).await
}

/// The state of an existing configuration, by id or name, for `terraform import`.
pub async fn import(client: &Client, reference: &str) -> Result<Value, Vec<Diagnostic>> {
    let summary = format!("Importing configuration {reference:?} failed");
    let configuration = if reference.starts_with("cfg-") {
        client
            .get_configuration(reference)
            .await
            .map_err(|e| e.diagnostics(&summary))?
    } else {
        client
            .find_configuration_by_name(reference)
            .await
            .map_err(|e| e.diagnostics(&summary))?
            .ok_or_else(|| {
                vec![diag::error(
                    summary.clone(),
                    format!("no configuration has the id or name {reference:?}"),
                )]
            })?
    };
    fetch_state(client, &configuration, &Value::Nil, &summary).await
}

/// The state of `configuration`, with its latest revision's properties read from the API.
async fn fetch_state(
    client: &Client,
    configuration: &pb::Configuration,
    template: &Value,
    summary: &str,
) -> Result<Value, Vec<Diagnostic>> {
    let latest = configuration
        .latest_revision
        .as_ref()
        .map(|r| r.revision)
        .unwrap_or(1);
    let revision = client
        .get_configuration_revision(&configuration.id, latest)
        .await
        .map_err(|e| e.diagnostics(summary))?;
    Ok(state_from(
        configuration,
        &revision.server_properties,
        template,
    ))
}

/// A configuration as a resource state; `template` keeps unset optional attributes null.
fn state_from(
    configuration: &pb::Configuration,
    server_properties: &str,
    template: &Value,
) -> Value {
    let description =
        if configuration.description.is_empty() && get(template, "description").is_nil() {
            Value::Nil
        } else {
            Value::from(configuration.description.as_str())
        };
    let kafka_versions =
        if configuration.kafka_versions.is_empty() && get(template, "kafka_versions").is_nil() {
            Value::Nil
        } else {
            v::strings(&configuration.kafka_versions)
        };
    v::object(vec![
        ("id", Value::from(configuration.id.as_str())),
        ("name", Value::from(configuration.name.as_str())),
        ("description", description),
        ("kafka_versions", kafka_versions),
        ("server_properties", Value::from(server_properties)),
        (
            "latest_revision",
            Value::from(
                configuration
                    .latest_revision
                    .as_ref()
                    .map(|r| r.revision)
                    .unwrap_or(0),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Value {
        v::object(vec![
            ("id", Value::from("cfg-1")),
            ("name", Value::from("tuned")),
            ("description", Value::Nil),
            ("kafka_versions", Value::Nil),
            ("server_properties", Value::from("num.partitions=5\n")),
            ("latest_revision", Value::from(1)),
        ])
    }

    #[test]
    fn new_properties_are_a_new_revision_in_place() {
        let prior = state();
        let mut proposed = prior.clone();
        set(
            &mut proposed,
            "server_properties",
            Value::from("num.partitions=6\n"),
        );
        let plan = plan(&prior, &proposed);
        assert!(plan.requires_replace.is_empty());
        assert!(v::is_unknown(get(&plan.planned, "latest_revision")));
        assert_eq!(get(&plan.planned, "id"), &Value::from("cfg-1"));
    }

    #[test]
    fn a_new_name_replaces_and_nothing_changed_plans_nothing() {
        let prior = state();
        let mut proposed = prior.clone();
        set(&mut proposed, "name", Value::from("other"));
        assert_eq!(
            plan(&prior, &proposed).requires_replace,
            vec![diag::attribute("name")]
        );
        assert_eq!(plan(&prior, &prior).planned, prior);
    }

    #[test]
    fn the_api_state_keeps_unset_attributes_null() {
        let configuration = pb::Configuration {
            id: "cfg-1".into(),
            name: "tuned".into(),
            latest_revision: Some(pb::ConfigurationRevision {
                revision: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            state_from(&configuration, "num.partitions=5\n", &state()),
            state()
        );
    }
}
