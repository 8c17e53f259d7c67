//! How the client commands print what they fetch: a table or key-value lines for people,
//! or the API's JSON with `--output json` ([`show`]).
//!
//! The resource modules build their rows; the shapes shared by more than one command (a
//! cluster, its nodes, an operation, a configuration) and the names of the API's enums are
//! here.

use ferry_proto::controlplane::v1 as pb;

use super::Output;

/// Prints a configuration as key-value lines, with its latest revision.
pub(super) fn print_configuration(configuration: &pb::Configuration) {
    let latest = configuration.latest_revision.clone().unwrap_or_default();
    println!("id:              {}", configuration.id);
    println!("name:            {}", configuration.name);
    println!("description:     {}", configuration.description);
    if !configuration.kafka_versions.is_empty() {
        println!(
            "kafka versions:  {}",
            configuration.kafka_versions.join(", ")
        );
    }
    println!("latest revision: {}", latest.revision);
}

/// Prints a cluster as key-value lines and its nodes as a table, or as JSON.
pub(super) fn print_cluster(cluster: &pb::Cluster, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(cluster);
    }
    let spec = cluster.spec.clone().unwrap_or_default();
    let status = cluster.status.clone().unwrap_or_default();
    let info = status.state_info.unwrap_or_default();
    println!("id:                {}", cluster.id);
    println!("name:              {}", spec.name);
    println!("state:             {}", cluster_state(status.state));
    if !info.code.is_empty() || !info.message.is_empty() {
        println!("state info:        {}: {}", info.code, info.message);
    }
    println!("kafka version:     {}", spec.kafka_version);
    println!(
        "shape:             {} brokers, {} controllers over zones {}",
        spec.broker_count,
        spec.controller_count,
        spec.zones.join(",")
    );
    println!("bootstrap brokers: {}", status.bootstrap_brokers);
    let revision = |c: &Option<pb::ConfigurationInfo>| match c {
        Some(c) => format!("{} revision {}", c.id, c.revision),
        None => "defaults".to_string(),
    };
    if spec.configuration.is_some() || status.configuration.is_some() {
        println!("configuration:     {}", revision(&spec.configuration));
        if spec.configuration != status.configuration {
            println!("  nodes run:       {}", revision(&status.configuration));
        }
    }
    if !spec.tags.is_empty() {
        let mut tags: Vec<String> = spec.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tags.sort();
        println!("tags:              {}", tags.join(", "));
    }
    if !cluster.active_operation_id.is_empty() {
        println!("operation:         {}", cluster.active_operation_id);
    }
    if !status.nodes.is_empty() {
        println!();
        print_nodes(&status.nodes);
    }
    Ok(())
}

/// Prints a cluster's nodes as a table, one row per node with its last probe.
pub(super) fn print_nodes(nodes: &[pb::Node]) {
    let rows = nodes
        .iter()
        .map(|n| {
            let port = if n.kafka_port != 0 {
                n.kafka_port
            } else {
                n.controller_port
            };
            vec![
                n.node_id.to_string(),
                node_role(n.role),
                n.host_id.clone(),
                n.zone.clone(),
                format!("{}:{port}", n.address),
                node_state(n.state),
                n.config_fingerprint.clone(),
                probe_membership(n),
                probe_replication(n),
                n.state_message.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "NODE",
            "ROLE",
            "HOST",
            "ZONE",
            "ADDRESS",
            "STATE",
            "CONFIG",
            "MEMBERSHIP",
            "UNDER-REPLICATED/OFFLINE",
            "MESSAGE",
        ],
        rows,
    );
}

/// How the node's agent last found it in the cluster: a broker's registration epoch (and
/// whether it is fenced), a controller's quorum role and leader; `-` until probed.
fn probe_membership(node: &pb::Node) -> String {
    let Some(probe) = &node.probe else {
        return "-".into();
    };
    let mut parts = Vec::new();
    if node.role == pb::NodeRole::Broker as i32 {
        parts.push(match (probe.broker_epoch, probe.fenced) {
            (epoch, _) if epoch < 0 => "unregistered".to_string(),
            (epoch, true) => format!("epoch {epoch} fenced"),
            (epoch, false) => format!("epoch {epoch}"),
        });
    }
    if !probe.quorum_role.is_empty() {
        parts.push(match probe.quorum_leader_id {
            -1 => format!("{}, no leader", probe.quorum_role),
            leader => format!("{}, leader {leader}", probe.quorum_role),
        });
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

/// A broker's count of the cluster's under-replicated and offline partitions (of all), from
/// its metadata image at its last probe; `-` for controllers and until probed.
fn probe_replication(node: &pb::Node) -> String {
    match node.probe.as_ref().and_then(|p| p.replication) {
        Some(r) => format!(
            "{}/{} of {}",
            r.under_replicated_partitions, r.offline_partitions, r.partitions
        ),
        None => "-".into(),
    }
}

/// Prints an operation as key-value lines and its steps as a table.
pub(super) fn print_operation(op: &pb::Operation) {
    println!("id:       {}", op.id);
    println!("cluster:  {}", op.cluster_id);
    println!("type:     {}", operation_type(op.r#type));
    println!("state:    {}", operation_state(op.state));
    println!("progress: {}%", op.progress_percent);
    println!("took:     {}", duration(op.started_at, op.ended_at));
    if let Some(error) = &op.error {
        println!("error:    {}: {}", error.code, error.message);
    }
    println!();
    let rows = op
        .steps
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                step_state(s.state),
                duration(s.started_at, s.ended_at),
                s.message.clone(),
            ]
        })
        .collect();
    print_table(&["STEP", "STATE", "TOOK", "MESSAGE"], rows);
}

/// `1.234 s` between two millisecond timestamps, `-` before the start, `running` before the
/// end.
pub(super) fn duration(started_at: i64, ended_at: i64) -> String {
    match (started_at, ended_at) {
        (0, _) => "-".into(),
        (_, 0) => "running".into(),
        (start, end) => format!("{:.3} s", (end - start) as f64 / 1000.0),
    }
}

/// Prints rows under headers, columns padded to their widest cell.
pub(super) fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `value` as pretty JSON, the shapes the REST API returns.
fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints `value` as the API's JSON, or runs `table` to print it for people.
pub(super) fn show<T: serde::Serialize + ?Sized>(
    output: Output,
    value: &T,
    table: impl FnOnce(),
) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(value),
        Output::Table => {
            table();
            Ok(())
        }
    }
}

/// The name of the API enum `value` without its `prefix`, `UNKNOWN(n)` for a value this
/// client does not know.
fn enum_name<E: TryFrom<i32>>(
    value: i32,
    name: impl Fn(&E) -> &'static str,
    prefix: &str,
) -> String {
    match E::try_from(value) {
        Ok(e) => name(&e).trim_start_matches(prefix).to_string(),
        Err(_) => format!("UNKNOWN({value})"),
    }
}

pub(super) fn cluster_state(v: i32) -> String {
    enum_name(v, pb::ClusterState::as_str_name, "CLUSTER_STATE_")
}

fn node_state(v: i32) -> String {
    enum_name(v, pb::NodeState::as_str_name, "NODE_STATE_")
}

fn node_role(v: i32) -> String {
    enum_name(v, pb::NodeRole::as_str_name, "NODE_ROLE_")
}

pub(super) fn step_state(v: i32) -> String {
    enum_name(v, pb::StepState::as_str_name, "STEP_STATE_")
}

pub(super) fn operation_state(v: i32) -> String {
    enum_name(v, pb::OperationState::as_str_name, "OPERATION_STATE_")
}

pub(super) fn operation_type(v: i32) -> String {
    enum_name(v, pb::OperationType::as_str_name, "OPERATION_TYPE_")
}

pub(super) fn host_health(v: i32) -> String {
    enum_name(v, pb::HostHealth::as_str_name, "HOST_HEALTH_")
}
