//! Diagnostics: what Terraform prints under "Error:" / "Warning:", optionally pointing at an
//! attribute of the configuration.

use crate::proto::tfplugin6::attribute_path::{Step, step::Selector};
use crate::proto::tfplugin6::{AttributePath, Diagnostic, diagnostic::Severity};

/// An error diagnostic.
pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: None,
    }
}

/// An error diagnostic on attribute `path` (see [`path`]).
pub fn error_at(
    path: AttributePath,
    summary: impl Into<String>,
    detail: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        attribute: Some(path),
        ..error(summary, detail)
    }
}

/// A path to a top-level attribute.
pub fn attribute(name: &str) -> AttributePath {
    AttributePath {
        steps: vec![step_name(name)],
    }
}

fn step_name(name: &str) -> Step {
    Step {
        selector: Some(Selector::AttributeName(name.to_string())),
    }
}

/// The attribute path for a field as the API names it in a field violation:
///
/// ```text
/// broker_count        -> broker_count
/// zones[1]            -> zones[1]           (list index)
/// tags[team]          -> tags["team"]       (map key)
/// broker_config[a.b]  -> broker_config["a.b"]
/// spec.broker_count   -> broker_count       (a `spec.` prefix is dropped)
/// ```
///
/// Returns None for fields that are not attributes of `ferry_cluster`.
pub fn path(field: &str) -> Option<AttributePath> {
    let field = field.strip_prefix("spec.").unwrap_or(field);
    // A configuration's properties are one string attribute: a violation of one property
    // (`server_properties[num.partitions]`) points at the whole text.
    if field == "server_properties" || field.starts_with("server_properties[") {
        return Some(attribute("server_properties"));
    }
    let (name, key) = match field.split_once('[') {
        Some((name, rest)) => (name, Some(rest.strip_suffix(']')?)),
        None => (field, None),
    };
    let known = [
        "name",
        "kafka_version",
        "broker_count",
        "controller_count",
        "zones",
        "storage_per_broker_bytes",
        "broker_config",
        "tags",
        "description",
        "kafka_versions",
    ];
    if !known.contains(&name) {
        return None;
    }
    let mut steps = vec![step_name(name)];
    if let Some(key) = key {
        let selector = match (name, key.parse::<i64>()) {
            ("zones", Ok(index)) => Selector::ElementKeyInt(index),
            _ => Selector::ElementKeyString(key.to_string()),
        };
        steps.push(Step {
            selector: Some(selector),
        });
    }
    Some(AttributePath { steps })
}

/// Whether any diagnostic is an error.
pub fn has_error(diagnostics: &[Diagnostic]) -> bool {
    diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selectors(field: &str) -> Vec<Selector> {
        path(field)
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.selector.unwrap())
            .collect()
    }

    #[test]
    fn api_fields_map_to_attribute_paths() {
        assert_eq!(
            selectors("broker_count"),
            vec![Selector::AttributeName("broker_count".into())]
        );
        assert_eq!(
            selectors("zones[1]"),
            vec![
                Selector::AttributeName("zones".into()),
                Selector::ElementKeyInt(1)
            ]
        );
        assert_eq!(
            selectors("tags[ferry:x]"),
            vec![
                Selector::AttributeName("tags".into()),
                Selector::ElementKeyString("ferry:x".into())
            ]
        );
        assert!(path("cluster_id").is_none());
    }
}
