//! The data sources: `ferry_cluster` (one cluster by id or name) and `ferry_bootstrap_brokers`.

use rmpv::Value;

use crate::api::Client;
use crate::proto::tfplugin6::Diagnostic;
use crate::value::{self as v, get};
use crate::{cluster, diag, schema};

/// Exactly one of `id` and `name` (unknown values pass: they are checked at read).
pub fn validate_cluster(config: &Value) -> Vec<Diagnostic> {
    let id = get(config, "id");
    let name = get(config, "name");
    if v::is_unknown(id) || v::is_unknown(name) {
        return vec![];
    }
    if id.is_nil() == name.is_nil() {
        return vec![diag::error(
            "Invalid ferry_cluster data source",
            "set exactly one of id and name",
        )];
    }
    vec![]
}

/// Reads data source `type_name` for `config`.
pub async fn read(
    client: &Client,
    type_name: &str,
    config: &Value,
) -> Result<Value, Vec<Diagnostic>> {
    match type_name {
        schema::CLUSTER => read_cluster(client, config).await,
        schema::BOOTSTRAP_BROKERS => {
            let id = v::as_str(get(config, "cluster_id")).unwrap_or_default();
            let summary = format!("Reading the bootstrap brokers of {id} failed");
            let brokers = client
                .bootstrap_brokers(id)
                .await
                .map_err(|e| e.diagnostics(&summary))?;
            Ok(v::object(vec![
                ("cluster_id", Value::from(id)),
                (
                    "bootstrap_brokers",
                    Value::from(cluster::sorted_brokers(&brokers)),
                ),
            ]))
        }
        other => Err(vec![diag::error(
            "Unknown data source",
            format!("terraform-provider-ferry has no {other:?}"),
        )]),
    }
}

async fn read_cluster(client: &Client, config: &Value) -> Result<Value, Vec<Diagnostic>> {
    let found = if let Some(id) = v::as_str(get(config, "id")) {
        let summary = format!("Reading cluster {id} failed");
        client.get(id).await.map_err(|e| e.diagnostics(&summary))?
    } else {
        let name = v::as_str(get(config, "name")).unwrap_or_default();
        let summary = format!("Reading cluster {name:?} failed");
        client
            .find_by_name(name)
            .await
            .map_err(|e| e.diagnostics(&summary))?
            .ok_or_else(|| {
                vec![diag::error(
                    summary,
                    format!("no cluster is named {name:?}"),
                )]
            })?
    };
    // Computed maps are always maps here (empty rather than null).
    let template = v::object(vec![
        ("broker_config", Value::Map(vec![])),
        ("tags", Value::Map(vec![])),
    ]);
    let mut state = cluster::state_from_cluster(&found, &template);
    if let Value::Map(entries) = &mut state {
        entries.retain(|(k, _)| !matches!(k.as_str(), Some("deletion_protection" | "timeouts")));
    }
    Ok(state)
}
