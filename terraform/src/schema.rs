//! The schemas Terraform sees: the provider block, the `ferry_cluster` and
//! `ferry_configuration` resources and the `ferry_cluster` / `ferry_bootstrap_brokers` data
//! sources.
//!
//! Which `ferry_cluster` attributes force a replacement is decided here too
//! ([`REPLACE_ON_CHANGE`]): exactly the spec fields the control-plane API cannot change in place
//! today. `broker_count` (grow), `tags` and `configuration_id` / `configuration_revision` (a
//! rolling restart) are updated in place; `deletion_protection` and `timeouts` live only in the
//! Terraform state.

use crate::proto::tfplugin6::schema::{Attribute, Block, NestedBlock, nested_block::NestingMode};
use crate::proto::tfplugin6::{Schema, StringKind};

/// The resource and data source type names.
pub const CLUSTER: &str = "ferry_cluster";
/// The bootstrap-brokers data source.
pub const BOOTSTRAP_BROKERS: &str = "ferry_bootstrap_brokers";
/// The configuration resource.
pub const CONFIGURATION: &str = "ferry_configuration";

/// Spec fields the API cannot change in place yet: a change plans a replacement.
pub const REPLACE_ON_CHANGE: [&str; 6] = [
    "name",
    "kafka_version",
    "controller_count",
    "zones",
    "storage_per_broker_bytes",
    "broker_config",
];

/// The default Kafka version (the one the control plane offers).
pub const DEFAULT_KAFKA_VERSION: &str = "3.9.0";
/// The default controller quorum size.
pub const DEFAULT_CONTROLLER_COUNT: u64 = 3;
/// The default storage per broker: 1 GiB (the API's minimum; `ferry dev` uses it too).
pub const DEFAULT_STORAGE_PER_BROKER_BYTES: u64 = 1 << 30;

/// The type of each node in `nodes`, as Terraform's JSON type syntax.
const NODE_TYPE: &str = r#"["list",["object",{"node_id":"number","role":"string","zone":"string","address":"string","kafka_port":"number","state":"string"}]]"#;

/// How an attribute may be set.
#[derive(Clone, Copy)]
enum Mode {
    Required,
    Optional,
    /// Optional; the provider fills a default (or the API's value) when unset.
    OptionalComputed,
    Computed,
}

fn attr(name: &str, ty: &str, mode: Mode, description: &str) -> Attribute {
    Attribute {
        name: name.to_string(),
        r#type: ty.as_bytes().to_vec(),
        description: description.to_string(),
        required: matches!(mode, Mode::Required),
        optional: matches!(mode, Mode::Optional | Mode::OptionalComputed),
        computed: matches!(mode, Mode::OptionalComputed | Mode::Computed),
        sensitive: false,
        description_kind: StringKind::Markdown as i32,
        deprecated: false,
    }
}

fn block(description: &str, attributes: Vec<Attribute>, block_types: Vec<NestedBlock>) -> Block {
    Block {
        version: 0,
        attributes,
        block_types,
        description: description.to_string(),
        description_kind: StringKind::Markdown as i32,
        deprecated: false,
    }
}

/// The provider block: where the control plane is and how to authenticate.
pub fn provider() -> Schema {
    let mut token = attr(
        "token",
        r#""string""#,
        Mode::Optional,
        "API token (a JWT; `ferry dev` prints one). Defaults to `FERRY_TOKEN`.",
    );
    token.sensitive = true;
    Schema {
        version: 0,
        block: Some(block(
            "Ferry: managed Kafka clusters on your own hosts.",
            vec![
                attr(
                    "endpoint",
                    r#""string""#,
                    Mode::Optional,
                    "The control-plane API URL, e.g. `http://127.0.0.1:7070` (plain HTTP/2; TLS \
                     is not supported yet). Defaults to `FERRY_ENDPOINT`.",
                ),
                token,
            ],
            vec![],
        )),
    }
}

/// The `ferry_cluster` resource.
pub fn cluster_resource() -> Schema {
    let replaces = " Changing it replaces the cluster: the API cannot change it in place yet.";
    let timeouts = NestedBlock {
        type_name: "timeouts".to_string(),
        block: Some(block(
            "How long each operation may take before Terraform gives up waiting (the operation \
             itself goes on). Durations like `30s`, `10m`, `1h`.",
            vec![
                attr("create", r#""string""#, Mode::Optional, "Default `20m`."),
                attr("update", r#""string""#, Mode::Optional, "Default `20m`."),
                attr("delete", r#""string""#, Mode::Optional, "Default `20m`."),
            ],
            vec![],
        )),
        nesting: NestingMode::Single as i32,
        min_items: 0,
        max_items: 0,
    };
    Schema {
        version: 0,
        block: Some(block(
            "A Kafka cluster run by Ferry. Creation waits until the cluster is ACTIVE and fails \
             with the operation's error if it does not get there.",
            vec![
                attr(
                    "id",
                    r#""string""#,
                    Mode::Computed,
                    "The cluster id (`cl-...`).",
                ),
                attr(
                    "name",
                    r#""string""#,
                    Mode::Required,
                    &format!("1-64 of `[A-Za-z0-9-]`, unique in the tenant.{replaces}"),
                ),
                attr(
                    "kafka_version",
                    r#""string""#,
                    Mode::OptionalComputed,
                    &format!("Kafka version the brokers present. Default `3.9.0`.{replaces}"),
                ),
                attr(
                    "broker_count",
                    r#""number""#,
                    Mode::Required,
                    "Brokers: 1-60, a multiple of the number of zones. Increasing it adds \
                     brokers in place; decreasing it is refused (the API cannot remove brokers \
                     yet).",
                ),
                attr(
                    "controller_count",
                    r#""number""#,
                    Mode::OptionalComputed,
                    &format!("Controllers in the KRaft quorum: 3 or 5. Default 3.{replaces}"),
                ),
                attr(
                    "zones",
                    r#"["list","string"]"#,
                    Mode::Required,
                    &format!("Zones the brokers spread over, each served by hosts.{replaces}"),
                ),
                attr(
                    "storage_per_broker_bytes",
                    r#""number""#,
                    Mode::OptionalComputed,
                    &format!("Storage reserved per broker, 1 GiB-16 TiB. Default 1 GiB.{replaces}"),
                ),
                attr(
                    "broker_config",
                    r#"["map","string"]"#,
                    Mode::Optional,
                    &format!("Broker configuration overrides by Kafka name.{replaces}"),
                ),
                attr(
                    "configuration_id",
                    r#""string""#,
                    Mode::Optional,
                    "The `ferry_configuration` whose revision the brokers run, under                      `broker_config` (a name in both takes `broker_config`'s value). Set                      together with `configuration_revision`. Changing either restarts the                      nodes in place, one at a time; removing it is refused.",
                ),
                attr(
                    "configuration_revision",
                    r#""number""#,
                    Mode::Optional,
                    "The revision of `configuration_id` to run (e.g.                      `ferry_configuration.x.latest_revision`).",
                ),
                attr(
                    "tags",
                    r#"["map","string"]"#,
                    Mode::Optional,
                    "User tags (at most 50; `ferry:` keys are reserved). Updated in place.",
                ),
                attr(
                    "deletion_protection",
                    r#""bool""#,
                    Mode::OptionalComputed,
                    "While true (the default), destroying the cluster is refused. Kept in the \
                     Terraform state only.",
                ),
                attr(
                    "state",
                    r#""string""#,
                    Mode::Computed,
                    "Cluster state: ACTIVE, UPDATING, FAILED, ...",
                ),
                attr(
                    "current_version",
                    r#""number""#,
                    Mode::Computed,
                    "The cluster's version; every change increments it.",
                ),
                attr(
                    "bootstrap_brokers",
                    r#""string""#,
                    Mode::Computed,
                    "Kafka bootstrap servers, `host:port,host:port` (sorted).",
                ),
                attr(
                    "nodes",
                    NODE_TYPE,
                    Mode::Computed,
                    "Brokers and controllers, by node id.",
                ),
            ],
            vec![timeouts],
        )),
    }
}

/// The `ferry_configuration` resource.
pub fn configuration_resource() -> Schema {
    Schema {
        version: 0,
        block: Some(block(
            "Named Kafka broker properties with immutable revisions, which clusters reference              (like `aws_msk_configuration`). Changing `server_properties` or `description` adds              a revision in place; clusters move to it only when their              `configuration_revision` changes. Destroying it is refused while a cluster uses it.",
            vec![
                attr(
                    "id",
                    r#""string""#,
                    Mode::Computed,
                    "The configuration id (`cfg-...`).",
                ),
                attr(
                    "name",
                    r#""string""#,
                    Mode::Required,
                    "1-64 of `[A-Za-z0-9-]`, unique in the tenant. Changing it replaces the                      configuration.",
                ),
                attr(
                    "description",
                    r#""string""#,
                    Mode::Optional,
                    "What the latest revision is for. Changing it adds a revision.",
                ),
                attr(
                    "kafka_versions",
                    r#"["list","string"]"#,
                    Mode::Optional,
                    "Kafka versions it is meant for; unset for any. Changing it replaces the                      configuration.",
                ),
                attr(
                    "server_properties",
                    r#""string""#,
                    Mode::Required,
                    "Broker properties in Java properties format (`num.partitions = 5`, one                      per line). Only configs Ferry's broker accepts; the API reports each bad                      line. Changing it adds a revision.",
                ),
                attr(
                    "latest_revision",
                    r#""number""#,
                    Mode::Computed,
                    "The newest revision (1 after creation).",
                ),
            ],
            vec![],
        )),
    }
}

/// The `ferry_cluster` data source: one cluster by `id` or `name`.
pub fn cluster_data_source() -> Schema {
    let computed = |name: &str, ty: &str, d: &str| attr(name, ty, Mode::Computed, d);
    Schema {
        version: 0,
        block: Some(block(
            "Looks up one cluster by `id` or by `name` (exactly one of them).",
            vec![
                attr(
                    "id",
                    r#""string""#,
                    Mode::OptionalComputed,
                    "The cluster id.",
                ),
                attr(
                    "name",
                    r#""string""#,
                    Mode::OptionalComputed,
                    "The cluster name.",
                ),
                computed("kafka_version", r#""string""#, "Kafka version."),
                computed("broker_count", r#""number""#, "Number of brokers."),
                computed("controller_count", r#""number""#, "Number of controllers."),
                computed("zones", r#"["list","string"]"#, "Zones."),
                computed(
                    "storage_per_broker_bytes",
                    r#""number""#,
                    "Storage per broker.",
                ),
                computed(
                    "broker_config",
                    r#"["map","string"]"#,
                    "Broker config overrides.",
                ),
                computed(
                    "configuration_id",
                    r#""string""#,
                    "The configuration the cluster references, if any.",
                ),
                computed("configuration_revision", r#""number""#, "Its revision."),
                computed("tags", r#"["map","string"]"#, "Tags."),
                computed("state", r#""string""#, "Cluster state."),
                computed("current_version", r#""number""#, "The cluster's version."),
                computed(
                    "bootstrap_brokers",
                    r#""string""#,
                    "Kafka bootstrap servers.",
                ),
                computed("nodes", NODE_TYPE, "Brokers and controllers."),
            ],
            vec![],
        )),
    }
}

/// The `ferry_bootstrap_brokers` data source.
pub fn bootstrap_brokers_data_source() -> Schema {
    Schema {
        version: 0,
        block: Some(block(
            "The Kafka bootstrap servers of a cluster.",
            vec![
                attr(
                    "cluster_id",
                    r#""string""#,
                    Mode::Required,
                    "The cluster id.",
                ),
                attr(
                    "bootstrap_brokers",
                    r#""string""#,
                    Mode::Computed,
                    "`host:port,host:port` (sorted).",
                ),
            ],
            vec![],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replaced_field_says_so_and_in_place_fields_do_not() {
        let schema = cluster_resource();
        for a in &schema.block.unwrap().attributes {
            let replaces = a.description.contains("replaces the cluster");
            assert_eq!(
                replaces,
                REPLACE_ON_CHANGE.contains(&a.name.as_str()),
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn types_are_valid_json() {
        for schema in [
            cluster_resource(),
            cluster_data_source(),
            configuration_resource(),
            provider(),
        ] {
            for a in schema.block.unwrap().attributes {
                serde_json::from_slice::<serde_json::Value>(&a.r#type).unwrap();
            }
        }
    }
}
