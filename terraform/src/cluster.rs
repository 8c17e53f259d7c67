//! The `ferry_cluster` resource: validation, planning, apply (create / update / delete), read
//! and import, all in terms of Terraform values ([`rmpv::Value`] objects).
//!
//! # Expected flow
//!
//! - create: CreateCluster with a fresh `client_request_id`, then wait for the create operation;
//!   the state is written from GetCluster once the cluster is ACTIVE.
//! - update: `tags` by UpdateTags (immediate), then a `broker_count` increase by
//!   UpdateBrokerCount and a wait for its operation, then a new `configuration_id` /
//!   `configuration_revision` by UpdateClusterConfiguration (a rolling restart) and a wait for
//!   its operation. Every other spec field forces a replacement
//!   ([`schema::REPLACE_ON_CHANGE`]), because the API has no call to change it. Removing the
//!   configuration is refused at plan time: the API applies revisions, it cannot go back to
//!   "none".
//! - delete: refused at plan time (and again at apply) while `deletion_protection` is true;
//!   else DeleteCluster and a wait for the delete operation.
//!
//! # Guarantees
//!
//! - No perpetual diff: what the API returns is normalized before it is stored — maps sorted,
//!   an empty map kept as null when the configuration left it null, zones kept in the
//!   configuration's order when they are the same set, nodes sorted by id, bootstrap brokers
//!   sorted.
//! - A failed create still records the cluster (Terraform marks it tainted), with the
//!   operation's error code and message as the diagnostic, so nothing is orphaned.
//!
//! # Caveats
//!
//! - A wait that hits its timeout reports it; the operation goes on in the control plane.
//! - `deletion_protection` and `timeouts` exist only in the Terraform state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use ferry_proto::controlplane::v1 as pb;
use rmpv::Value;

use crate::api::{self, Client};
use crate::diag;
use crate::proto::tfplugin6::{AttributePath, Diagnostic};
use crate::schema::{self, REPLACE_ON_CHANGE};
use crate::value::{self as v, get, set};

/// Broker count limits, as the API enforces them.
const BROKER_COUNT_MAX: u64 = 60;
/// Storage per broker limits, as the API enforces them: 1 GiB to 16 TiB.
const STORAGE_MIN: u64 = 1 << 30;
const STORAGE_MAX: u64 = 16 << 40;
/// Tag limits, as the API enforces them (MSK's).
const TAGS_MAX: usize = 50;
const TAG_KEY_LEN_MAX: usize = 128;
const TAG_VALUE_LEN_MAX: usize = 256;
/// Default wait for create, update and delete.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Checks the configuration without calling the API: everything the API would refuse that is
/// decidable from the configuration alone (unknown values are skipped).
pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let invalid = |out: &mut Vec<Diagnostic>, path: AttributePath, detail: String| {
        out.push(diag::error_at(
            path,
            "Invalid ferry_cluster configuration",
            detail,
        ));
    };
    if let Some(name) = v::as_str(get(config, "name")) {
        let ok = (1..=64).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            invalid(
                &mut out,
                diag::attribute("name"),
                format!("name: must be 1-64 letters, digits and dashes, not {name:?}"),
            );
        }
    }
    let zones = v::as_strings(get(config, "zones"));
    if let Some(zones) = &zones {
        if zones.is_empty() {
            invalid(
                &mut out,
                diag::attribute("zones"),
                "zones: must name at least one zone".into(),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, zone) in zones.iter().enumerate() {
            if !seen.insert(zone) {
                invalid(
                    &mut out,
                    diag::path(&format!("zones[{i}]")).expect("zones is an attribute"),
                    format!("zones[{i}]: zone {zone:?} is listed more than once"),
                );
            }
        }
    }
    let brokers = get(config, "broker_count");
    if let Some(count) = v::as_i64(brokers) {
        if !(1..=BROKER_COUNT_MAX as i64).contains(&count) {
            invalid(
                &mut out,
                diag::attribute("broker_count"),
                format!("broker_count: must be between 1 and {BROKER_COUNT_MAX}, not {count}"),
            );
        }
        let distinct = zones
            .as_ref()
            .map(|z| z.iter().collect::<BTreeSet<_>>().len() as i64);
        if let Some(zones) = distinct
            && zones > 0
            && count > 0
            && count % zones != 0
        {
            invalid(
                &mut out,
                diag::attribute("broker_count"),
                format!(
                    "broker_count: must be a multiple of the number of zones ({zones}) so \
                     brokers spread evenly, not {count}"
                ),
            );
        }
    } else if !v::is_unknown(brokers) && !brokers.is_nil() {
        invalid(
            &mut out,
            diag::attribute("broker_count"),
            "broker_count: must be a whole number".into(),
        );
    }
    if let Some(count) = v::as_i64(get(config, "controller_count"))
        && count != 3
        && count != 5
    {
        invalid(
            &mut out,
            diag::attribute("controller_count"),
            format!("controller_count: must be 3 or 5, not {count}"),
        );
    }
    if let Some(bytes) = v::as_u64(get(config, "storage_per_broker_bytes"))
        && !(STORAGE_MIN..=STORAGE_MAX).contains(&bytes)
    {
        invalid(
            &mut out,
            diag::attribute("storage_per_broker_bytes"),
            format!(
                "storage_per_broker_bytes: must be between {STORAGE_MIN} (1 GiB) and \
                 {STORAGE_MAX} (16 TiB), not {bytes}"
            ),
        );
    }
    if let Some(tags) = v::as_string_map(get(config, "tags")) {
        validate_tags(&tags, &mut out);
    }
    if let Err(d) = Timeouts::from_value(get(config, "timeouts")) {
        out.push(d);
    }
    let id = get(config, "configuration_id");
    let revision = get(config, "configuration_revision");
    if !v::is_unknown(id) && !v::is_unknown(revision) && id.is_nil() != revision.is_nil() {
        invalid(
            &mut out,
            diag::attribute(if id.is_nil() {
                "configuration_id"
            } else {
                "configuration_revision"
            }),
            "configuration_id and configuration_revision are set together or not at all".into(),
        );
    }
    if let Some(n) = v::as_i64(revision)
        && n < 1
    {
        invalid(
            &mut out,
            diag::attribute("configuration_revision"),
            format!("configuration_revision: must be 1 or above, not {n}"),
        );
    }
    out
}

fn validate_tags(tags: &BTreeMap<String, String>, out: &mut Vec<Diagnostic>) {
    let mut invalid = |field: String, detail: String| {
        let path = diag::path(&field).expect("tags is an attribute");
        out.push(diag::error_at(
            path,
            "Invalid ferry_cluster configuration",
            detail,
        ));
    };
    if tags.len() > TAGS_MAX {
        invalid(
            "tags".into(),
            format!(
                "tags: at most {TAGS_MAX} tags are allowed, not {}",
                tags.len()
            ),
        );
    }
    for (key, value) in tags {
        let field = format!("tags[{key}]");
        let key_len = key.chars().count();
        if key_len == 0 || key_len > TAG_KEY_LEN_MAX {
            invalid(
                field.clone(),
                format!("{field}: keys must be 1 to {TAG_KEY_LEN_MAX} characters long"),
            );
        }
        if key.starts_with("ferry:") {
            invalid(
                field.clone(),
                format!("{field}: keys starting with \"ferry:\" are reserved"),
            );
        }
        if value.chars().count() > TAG_VALUE_LEN_MAX {
            invalid(
                field.clone(),
                format!("{field}: values may be at most {TAG_VALUE_LEN_MAX} characters"),
            );
        }
    }
}

/// The `timeouts` block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeouts {
    /// How long a create waits for ACTIVE.
    pub create: Duration,
    /// How long an update waits for its operation.
    pub update: Duration,
    /// How long a delete waits for its operation.
    pub delete: Duration,
}

impl Timeouts {
    /// Parses the block (null = all defaults).
    pub fn from_value(value: &Value) -> Result<Timeouts, Diagnostic> {
        let one = |name: &str| -> Result<Duration, Diagnostic> {
            match v::as_str(get(value, name)) {
                None => Ok(DEFAULT_TIMEOUT),
                Some(text) => parse_duration(text).ok_or_else(|| {
                    let path = AttributePath {
                        steps: vec![
                            diag::attribute("timeouts").steps.remove(0),
                            diag::attribute(name).steps.remove(0),
                        ],
                    };
                    diag::error_at(
                        path,
                        "Invalid timeout",
                        format!("{text:?} is not a duration like \"30s\", \"10m\" or \"1h30m\""),
                    )
                }),
            }
        };
        Ok(Timeouts {
            create: one("create")?,
            update: one("update")?,
            delete: one("delete")?,
        })
    }
}

/// Parses `1h30m`, `10m`, `45s` (Go's duration syntax without fractions).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        any = true;
    }
    (any && digits.is_empty()).then(|| Duration::from_secs(total))
}

/// Computed-only attributes, filled by the provider.
const COMPUTED: [&str; 5] = [
    "id",
    "state",
    "current_version",
    "bootstrap_brokers",
    "nodes",
];

/// A planned change: the planned state, the attributes that force a replacement and any errors.
pub struct Plan {
    /// The planned new state (null for a destroy).
    pub planned: Value,
    /// Attributes whose change forces a replacement.
    pub requires_replace: Vec<AttributePath>,
    /// Errors found while planning.
    pub diagnostics: Vec<Diagnostic>,
}

/// Plans the change from `prior` to `proposed` (either may be null: create, destroy).
pub fn plan(prior: &Value, proposed: &Value) -> Plan {
    let mut result = Plan {
        planned: proposed.clone(),
        requires_replace: Vec::new(),
        diagnostics: Vec::new(),
    };
    if proposed.is_nil() {
        if let Some(d) = refuse_destroy(prior) {
            result.diagnostics.push(d);
        }
        return result;
    }
    let planned = &mut result.planned;
    let defaults = [
        ("kafka_version", Value::from(schema::DEFAULT_KAFKA_VERSION)),
        (
            "controller_count",
            Value::from(schema::DEFAULT_CONTROLLER_COUNT),
        ),
        (
            "storage_per_broker_bytes",
            Value::from(schema::DEFAULT_STORAGE_PER_BROKER_BYTES),
        ),
        ("deletion_protection", Value::from(true)),
    ];
    for (name, default) in defaults {
        if get(planned, name).is_nil() {
            set(planned, name, default);
        }
    }
    if prior.is_nil() {
        for name in COMPUTED {
            set(planned, name, v::unknown());
        }
        return result;
    }

    for name in REPLACE_ON_CHANGE {
        if !same(get(prior, name), get(planned, name)) {
            result.requires_replace.push(diag::attribute(name));
        }
    }
    let old = v::as_u64(get(prior, "broker_count"));
    let new = v::as_u64(get(planned, "broker_count"));
    if let (Some(old), Some(new)) = (old, new)
        && new < old
    {
        result.diagnostics.push(diag::error_at(
            diag::attribute("broker_count"),
            "broker_count cannot decrease",
            format!(
                "broker_count: must be above the current {old} (removing brokers is not \
                 supported yet); the API refuses {new}. Raise it, or replace the cluster."
            ),
        ));
    }
    let configuration_change = configuration_changes(prior, planned);
    if configuration_change
        && !get(prior, "configuration_id").is_nil()
        && get(planned, "configuration_id").is_nil()
    {
        result.diagnostics.push(diag::error_at(
            diag::attribute("configuration_id"),
            "The configuration cannot be removed",
            "A cluster that runs a configuration revision can only be moved to another              revision (UpdateClusterConfiguration); point it at one, or replace the cluster."
                .to_string(),
        ));
    }
    let brokers_change =
        !same(get(prior, "broker_count"), get(planned, "broker_count")) || configuration_change;
    let tags_change = !same(get(prior, "tags"), get(planned, "tags"));
    if !result.requires_replace.is_empty() {
        for name in COMPUTED {
            set(planned, name, v::unknown());
        }
    } else if brokers_change {
        for name in ["state", "current_version", "bootstrap_brokers", "nodes"] {
            set(planned, name, v::unknown());
        }
    } else if tags_change {
        set(planned, "current_version", v::unknown());
    }
    result
}

/// Whether the configuration reference changes.
fn configuration_changes(prior: &Value, planned: &Value) -> bool {
    !same(
        get(prior, "configuration_id"),
        get(planned, "configuration_id"),
    ) || !same(
        get(prior, "configuration_revision"),
        get(planned, "configuration_revision"),
    )
}

/// Whether two attribute values are the same for the API: null and empty collections are
/// equal, maps compare by content; unknown differs from everything.
fn same(a: &Value, b: &Value) -> bool {
    if v::is_unknown(a) || v::is_unknown(b) {
        return false;
    }
    let empty = |x: &Value| {
        x.is_nil()
            || x.as_map().is_some_and(Vec::is_empty)
            || x.as_array().is_some_and(Vec::is_empty)
    };
    if empty(a) && empty(b) {
        return true;
    }
    if let (Some(a), Some(b)) = (v::as_string_map(a), v::as_string_map(b)) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (v::as_u64(a), v::as_u64(b)) {
        return a == b;
    }
    // Lists of strings (zones) compare as sets: the API spreads brokers over the zones evenly
    // whatever their order, so reordering them changes nothing and must not replace the
    // cluster.
    if let (Some(mut a), Some(mut b)) = (v::as_strings(a), v::as_strings(b)) {
        a.sort_unstable();
        b.sort_unstable();
        return a == b;
    }
    a == b
}

/// The error for a destroy while `deletion_protection` is on (None if it is off).
fn refuse_destroy(prior: &Value) -> Option<Diagnostic> {
    if v::as_bool(get(prior, "deletion_protection")) == Some(false) {
        return None;
    }
    Some(diag::error_at(
        diag::attribute("deletion_protection"),
        "Cluster is protected from deletion",
        format!(
            "ferry_cluster {:?} ({}) has deletion_protection = true, so it cannot be destroyed. \
             Set deletion_protection = false, apply, then destroy.",
            v::as_str(get(prior, "name")).unwrap_or("?"),
            v::as_str(get(prior, "id")).unwrap_or("?"),
        ),
    ))
}

/// The outcome of an apply: the new state (null when gone) and diagnostics.
pub struct Applied {
    /// The new state; with errors, what exists now (Terraform marks a created one tainted).
    pub state: Value,
    /// Errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

/// Applies a planned change.
pub async fn apply(client: &Client, prior: &Value, planned: &Value) -> Applied {
    if planned.is_nil() {
        return delete(client, prior).await;
    }
    let timeouts = Timeouts::from_value(get(planned, "timeouts")).unwrap_or(Timeouts {
        create: DEFAULT_TIMEOUT,
        update: DEFAULT_TIMEOUT,
        delete: DEFAULT_TIMEOUT,
    });
    if prior.is_nil() {
        create(client, planned, timeouts.create).await
    } else {
        update(client, prior, planned, timeouts.update).await
    }
}

async fn create(client: &Client, planned: &Value, timeout: Duration) -> Applied {
    let name = v::as_str(get(planned, "name"))
        .unwrap_or_default()
        .to_string();
    let summary = format!("Creating cluster {name:?} failed");
    let request_id = format!("terraform-{}", uuid::Uuid::new_v4());
    let created = match client.create(spec(planned), &request_id).await {
        Ok(created) => created,
        Err(e) => return failed(Value::Nil, e.diagnostics(&summary)),
    };
    let id = created.cluster.map(|c| c.id).unwrap_or_default();
    let operation = created.operation.map(|o| o.id).unwrap_or_default();
    let waited = client.wait(&operation, timeout).await;
    let state = match client.get(&id).await {
        Ok(cluster) => state_from_cluster(&cluster, planned),
        // The cluster exists (we have its id): record at least that, so it is not orphaned.
        Err(e) => {
            let mut state = planned.clone();
            set(&mut state, "id", Value::from(id.as_str()));
            for name in ["state", "current_version", "bootstrap_brokers", "nodes"] {
                set(&mut state, name, Value::Nil);
            }
            return failed(state, e.diagnostics(&summary));
        }
    };
    match waited {
        Ok(_) => Applied {
            state,
            diagnostics: Vec::new(),
        },
        Err(e) => {
            let mut state = state;
            let mut diagnostics = e.diagnostics(&summary);
            let advice = if matches!(e, api::Error::OperationFailed { .. }) {
                // A failed cluster is of no use: let the next apply replace it (Terraform
                // marks it tainted) or a destroy remove it, without a protection step first.
                // Terraform skips its plan-vs-result check when apply reports errors.
                set(&mut state, "deletion_protection", Value::Boolean(false));
                "The failed cluster is kept in the state (tainted) with deletion_protection \
                 off: the next apply replaces it, `terraform destroy` removes it."
                    .to_string()
            } else {
                // A slow create may still succeed: keep it, and let deletion protection stop
                // Terraform from replacing a cluster that is about to work.
                format!(
                    "The cluster {id} is kept in the state, tainted. If it becomes ACTIVE, \
                     `terraform untaint` keeps it; otherwise the next apply replaces it \
                     (after deletion_protection is set to false)."
                )
            };
            if let Some(last) = diagnostics.last_mut() {
                last.detail = format!("{}\n\n{advice}", last.detail);
            }
            failed(state, diagnostics)
        }
    }
}

async fn update(client: &Client, prior: &Value, planned: &Value, timeout: Duration) -> Applied {
    let id = v::as_str(get(prior, "id")).unwrap_or_default().to_string();
    let summary = format!("Updating cluster {id} failed");
    let mut diagnostics = Vec::new();
    if !same(get(prior, "tags"), get(planned, "tags")) {
        let tags: HashMap<String, String> = v::as_string_map(get(planned, "tags"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        if let Err(e) = client.update_tags(&id, tags).await {
            diagnostics.extend(e.diagnostics(&summary));
        }
    }
    let count = v::as_u64(get(planned, "broker_count"));
    if !diag::has_error(&diagnostics)
        && !same(get(prior, "broker_count"), get(planned, "broker_count"))
        && let Some(count) = count
    {
        let waited = match client.update_broker_count(&id, count as u32).await {
            Ok(response) => {
                let operation = response.operation.map(|o| o.id).unwrap_or_default();
                client.wait(&operation, timeout).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = waited {
            diagnostics.extend(e.diagnostics(&summary));
        }
    }
    if !diag::has_error(&diagnostics)
        && configuration_changes(prior, planned)
        && let (Some(configuration), Some(revision)) = (
            v::as_str(get(planned, "configuration_id")),
            v::as_u64(get(planned, "configuration_revision")),
        )
    {
        let waited = match client
            .update_cluster_configuration(&id, configuration, revision)
            .await
        {
            Ok(response) => {
                let operation = response.operation.map(|o| o.id).unwrap_or_default();
                client.wait(&operation, timeout).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = waited {
            diagnostics.extend(e.diagnostics(&summary));
        }
    }
    let api_change = !same(get(prior, "tags"), get(planned, "tags"))
        || !same(get(prior, "broker_count"), get(planned, "broker_count"))
        || configuration_changes(prior, planned);
    if !api_change {
        // Only state-only attributes changed (deletion_protection, timeouts).
        return Applied {
            state: planned.clone(),
            diagnostics,
        };
    }
    match client.get(&id).await {
        Ok(cluster) => {
            let mut state = state_from_cluster(&cluster, planned);
            if !diag::has_error(&diagnostics) {
                // Terraform requires every value known at plan time to come back unchanged;
                // a node that changed state meanwhile shows at the next refresh instead.
                for name in COMPUTED {
                    let planned_value = get(planned, name);
                    if !v::is_unknown(planned_value) {
                        set(&mut state, name, planned_value.clone());
                    }
                }
            }
            Applied { state, diagnostics }
        }
        Err(e) => {
            diagnostics.extend(e.diagnostics(&summary));
            failed(prior.clone(), diagnostics)
        }
    }
}

async fn delete(client: &Client, prior: &Value) -> Applied {
    if let Some(d) = refuse_destroy(prior) {
        return failed(prior.clone(), vec![d]);
    }
    let id = v::as_str(get(prior, "id")).unwrap_or_default().to_string();
    let summary = format!("Deleting cluster {id} failed");
    let timeout = Timeouts::from_value(get(prior, "timeouts"))
        .map(|t| t.delete)
        .unwrap_or(DEFAULT_TIMEOUT);
    let operation = match client.delete(&id).await {
        Ok(response) => response.operation.map(|o| o.id).unwrap_or_default(),
        Err(e) if e.is_not_found() => {
            return Applied {
                state: Value::Nil,
                diagnostics: vec![],
            };
        }
        Err(e) => return failed(prior.clone(), e.diagnostics(&summary)),
    };
    match client.wait(&operation, timeout).await {
        Ok(_) => Applied {
            state: Value::Nil,
            diagnostics: Vec::new(),
        },
        Err(e) => failed(prior.clone(), e.diagnostics(&summary)),
    }
}

fn failed(state: Value, diagnostics: Vec<Diagnostic>) -> Applied {
    Applied { state, diagnostics }
}

/// Refreshes `current` from the API; null when the cluster is gone.
pub async fn read(client: &Client, current: &Value) -> Result<Value, Vec<Diagnostic>> {
    let Some(id) = v::as_str(get(current, "id")).filter(|id| !id.is_empty()) else {
        return Ok(current.clone());
    };
    match client.get(id).await {
        Ok(cluster) => Ok(state_from_cluster(&cluster, current)),
        Err(e) if e.is_not_found() => Ok(Value::Nil),
        Err(e) => Err(e.diagnostics(&format!("Reading cluster {id} failed"))),
    }
}

/// The state of an existing cluster, by id (or by name), for `terraform import`.
pub async fn import(client: &Client, reference: &str) -> Result<Value, Vec<Diagnostic>> {
    let summary = format!("Importing cluster {reference:?} failed");
    let cluster = if reference.starts_with("cl-") {
        client
            .get(reference)
            .await
            .map_err(|e| e.diagnostics(&summary))?
    } else {
        match client
            .find_by_name(reference)
            .await
            .map_err(|e| e.diagnostics(&summary))?
        {
            Some(cluster) => cluster,
            None => {
                return Err(vec![diag::error(
                    summary,
                    format!("no cluster has the id or name {reference:?}"),
                )]);
            }
        }
    };
    // Imported clusters start protected; empty maps stay null like an unset attribute.
    let template = v::object(vec![("deletion_protection", Value::from(true))]);
    Ok(state_from_cluster(&cluster, &template))
}

/// The ClusterSpec a planned state asks for.
fn spec(planned: &Value) -> pb::ClusterSpec {
    let map = |name: &str| -> HashMap<String, String> {
        v::as_string_map(get(planned, name))
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    pb::ClusterSpec {
        name: v::as_str(get(planned, "name"))
            .unwrap_or_default()
            .to_string(),
        kafka_version: v::as_str(get(planned, "kafka_version"))
            .unwrap_or_default()
            .to_string(),
        broker_count: v::as_u64(get(planned, "broker_count")).unwrap_or(0) as u32,
        controller_count: v::as_u64(get(planned, "controller_count")).unwrap_or(0) as u32,
        zones: v::as_strings(get(planned, "zones")).unwrap_or_default(),
        storage_per_broker_bytes: v::as_u64(get(planned, "storage_per_broker_bytes")).unwrap_or(0),
        broker_config: map("broker_config"),
        tags: map("tags"),
        configuration: match (
            v::as_str(get(planned, "configuration_id")),
            v::as_u64(get(planned, "configuration_revision")),
        ) {
            (Some(id), Some(revision)) => Some(pb::ConfigurationInfo {
                id: id.to_string(),
                revision,
            }),
            _ => None,
        },
    }
}

/// A cluster as a resource state. `template` (the planned or prior state) supplies the
/// state-only attributes and the presentation choices that keep plans empty: null for an
/// empty map the configuration left unset, and its zone order.
pub fn state_from_cluster(cluster: &pb::Cluster, template: &Value) -> Value {
    let spec = cluster.spec.clone().unwrap_or_default();
    let status = cluster.status.clone().unwrap_or_default();
    let map = |name: &str, api: &HashMap<String, String>| -> Value {
        let sorted: BTreeMap<&String, &String> = api.iter().collect();
        if sorted.is_empty() && !get(template, name).is_map() {
            Value::Nil
        } else {
            v::string_map(sorted)
        }
    };
    let zones = match v::as_strings(get(template, "zones")) {
        Some(mine)
            if mine.iter().collect::<BTreeSet<_>>()
                == spec.zones.iter().collect::<BTreeSet<_>>()
                && mine.len() == spec.zones.len() =>
        {
            mine
        }
        _ => spec.zones.clone(),
    };
    let deletion_protection = match get(template, "deletion_protection") {
        Value::Boolean(b) => Value::Boolean(*b),
        _ => Value::Boolean(true),
    };
    v::object(vec![
        ("id", Value::from(cluster.id.as_str())),
        ("name", Value::from(spec.name.as_str())),
        ("kafka_version", Value::from(spec.kafka_version.as_str())),
        ("broker_count", Value::from(spec.broker_count)),
        ("controller_count", Value::from(spec.controller_count)),
        ("zones", v::strings(&zones)),
        (
            "storage_per_broker_bytes",
            Value::from(spec.storage_per_broker_bytes),
        ),
        ("broker_config", map("broker_config", &spec.broker_config)),
        (
            "configuration_id",
            spec.configuration
                .as_ref()
                .map_or(Value::Nil, |c| Value::from(c.id.as_str())),
        ),
        (
            "configuration_revision",
            spec.configuration
                .as_ref()
                .map_or(Value::Nil, |c| Value::from(c.revision)),
        ),
        ("tags", map("tags", &spec.tags)),
        ("deletion_protection", deletion_protection),
        ("state", Value::from(cluster_state(status.state()))),
        ("current_version", Value::from(cluster.current_version)),
        (
            "bootstrap_brokers",
            Value::from(sorted_brokers(&status.bootstrap_brokers)),
        ),
        ("nodes", nodes(&status.nodes)),
        ("timeouts", timeouts_or_nil(get(template, "timeouts"))),
    ])
}

fn timeouts_or_nil(value: &Value) -> Value {
    if value.is_map() {
        value.clone()
    } else {
        Value::Nil
    }
}

/// `CLUSTER_STATE_ACTIVE` -> `ACTIVE`.
pub fn cluster_state(state: pb::ClusterState) -> String {
    let name = state.as_str_name();
    name.strip_prefix("CLUSTER_STATE_")
        .unwrap_or(name)
        .to_string()
}

/// `b:1,a:2` -> `a:2,b:1`: the API's order is not a contract, so the state keeps it sorted.
pub fn sorted_brokers(brokers: &str) -> String {
    let mut list: Vec<&str> = brokers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    list.sort_unstable();
    list.join(",")
}

/// The node list, sorted by node id.
pub fn nodes(nodes: &[pb::Node]) -> Value {
    let mut nodes: Vec<&pb::Node> = nodes.iter().collect();
    nodes.sort_by_key(|n| n.node_id);
    Value::Array(
        nodes
            .into_iter()
            .map(|n| {
                let role = n.role().as_str_name();
                let state = n.state().as_str_name();
                v::object(vec![
                    ("node_id", Value::from(n.node_id)),
                    (
                        "role",
                        Value::from(role.strip_prefix("NODE_ROLE_").unwrap_or(role)),
                    ),
                    ("zone", Value::from(n.zone.as_str())),
                    ("address", Value::from(n.address.as_str())),
                    ("kafka_port", Value::from(n.kafka_port)),
                    (
                        "state",
                        Value::from(state.strip_prefix("NODE_STATE_").unwrap_or(state)),
                    ),
                ])
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(brokers: i64, zones: &[&str]) -> Value {
        v::object(vec![
            ("name", Value::from("orders")),
            ("broker_count", Value::from(brokers)),
            (
                "zones",
                Value::Array(zones.iter().map(|z| Value::from(*z)).collect()),
            ),
            ("tags", Value::Nil),
            ("timeouts", Value::Nil),
        ])
    }

    fn details(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics.iter().map(|d| d.detail.clone()).collect()
    }

    #[test]
    fn brokers_must_be_a_multiple_of_the_zones() {
        assert!(validate(&config(6, &["a", "b", "c"])).is_empty());
        assert_eq!(
            details(&validate(&config(4, &["a", "b", "c"]))),
            vec![
                "broker_count: must be a multiple of the number of zones (3) so brokers spread \
                 evenly, not 4"
            ]
        );
    }

    #[test]
    fn unknown_values_are_not_validated() {
        let mut c = config(4, &["a", "b", "c"]);
        set(&mut c, "broker_count", v::unknown());
        assert!(validate(&c).is_empty());
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("45"), None);
        assert_eq!(parse_duration("x"), None);
    }

    fn state() -> Value {
        let mut s = config(3, &["a", "b", "c"]);
        for (name, value) in [
            ("id", Value::from("cl-1")),
            ("kafka_version", Value::from("3.9.0")),
            ("controller_count", Value::from(3)),
            ("storage_per_broker_bytes", Value::from(1u64 << 30)),
            ("broker_config", Value::Nil),
            ("deletion_protection", Value::from(true)),
            ("state", Value::from("ACTIVE")),
            ("current_version", Value::from(2)),
            ("bootstrap_brokers", Value::from("127.0.0.1:1")),
            ("nodes", Value::Array(vec![])),
        ] {
            set(&mut s, name, value);
        }
        s
    }

    #[test]
    fn growing_brokers_updates_in_place_and_shrinking_is_refused() {
        let prior = state();
        let mut proposed = prior.clone();
        set(&mut proposed, "broker_count", Value::from(6));
        let plan = plan(&prior, &proposed);
        assert!(plan.requires_replace.is_empty());
        assert!(plan.diagnostics.is_empty());
        assert!(v::is_unknown(get(&plan.planned, "nodes")));
        assert_eq!(get(&plan.planned, "id"), &Value::from("cl-1"));

        let mut shrink = prior.clone();
        set(&mut shrink, "broker_count", Value::from(2));
        assert!(diag::has_error(&super::plan(&prior, &shrink).diagnostics));
    }

    #[test]
    fn spec_fields_the_api_cannot_change_force_replacement() {
        let prior = state();
        let mut proposed = prior.clone();
        set(
            &mut proposed,
            "zones",
            v::strings(&["a".into(), "b".into()]),
        );
        let plan = plan(&prior, &proposed);
        assert_eq!(plan.requires_replace, vec![diag::attribute("zones")]);
    }

    #[test]
    fn reordering_zones_is_not_a_replacement() {
        let prior = state();
        let mut proposed = prior.clone();
        set(
            &mut proposed,
            "zones",
            v::strings(&["c".into(), "a".into(), "b".into()]),
        );
        assert!(plan(&prior, &proposed).requires_replace.is_empty());
    }

    #[test]
    fn an_unchanged_config_plans_nothing() {
        let prior = state();
        let plan = plan(&prior, &prior);
        assert_eq!(plan.planned, prior);
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn destroy_is_refused_while_protected() {
        let prior = state();
        assert!(diag::has_error(&plan(&prior, &Value::Nil).diagnostics));
        let mut unprotected = prior.clone();
        set(&mut unprotected, "deletion_protection", Value::from(false));
        assert!(plan(&unprotected, &Value::Nil).diagnostics.is_empty());
    }

    #[test]
    fn api_values_are_normalized_against_the_template() {
        let cluster = pb::Cluster {
            id: "cl-1".into(),
            spec: Some(pb::ClusterSpec {
                name: "orders".into(),
                zones: vec!["c".into(), "a".into(), "b".into()],
                ..Default::default()
            }),
            status: Some(pb::ClusterStatus {
                bootstrap_brokers: "b:2,a:1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = state_from_cluster(&cluster, &state());
        assert_eq!(
            v::as_strings(get(&s, "zones")).unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(get(&s, "tags"), &Value::Nil);
        assert_eq!(get(&s, "bootstrap_brokers"), &Value::from("a:1,b:2"));
    }
}
