//! `ferry quorum describe`: the metadata quorum's state, as `kafka-metadata-quorum describe`
//! prints it.
//!
//! ```text
//! ferry quorum describe --bootstrap-controller 127.0.0.1:9093 --status \
//!     --tls-ca node-101/tls/ca.pem --tls-cert node-101/tls/cert.pem --tls-key node-101/tls/key.pem
//! ferry quorum describe --bootstrap-controller 127.0.0.1:9093 --replication   (same TLS flags)
//! ```
//!
//! The controllers answer only nodes of their cluster over mutual TLS, so the command presents
//! a node's certificate (any node of the cluster; the cluster id is read from it).

use std::collections::BTreeMap;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_data_plane::authority::quorum::ControllerClient;
use ferry_proto::controller::v1::{DescribeQuorumResponse, ReplicaState};

/// Arguments of `ferry quorum`.
#[derive(Debug, Args)]
pub struct QuorumArgs {
    /// What to do.
    #[command(subcommand)]
    command: QuorumCommand,
}

/// `ferry quorum` subcommands.
#[derive(Debug, Subcommand)]
enum QuorumCommand {
    /// Describe the metadata quorum.
    Describe {
        /// Controllers to ask, HOST:PORT[,HOST:PORT...].
        #[arg(
            long,
            env = "FERRY_BOOTSTRAP_CONTROLLER",
            value_delimiter = ',',
            required = true
        )]
        bootstrap_controller: Vec<String>,
        /// Leader, epoch, high watermark, lag, voters and observers.
        #[arg(long, conflicts_with = "replication")]
        status: bool,
        /// One line per voter and observer with its log end offset, lag and fetch times.
        #[arg(long)]
        replication: bool,
        /// A certificate of a node of the cluster (the cluster id is read from it): the
        /// controllers answer only their cluster's nodes.
        #[command(flatten)]
        tls: crate::node::TlsArgs,
    },
}

/// Runs `ferry quorum`.
pub async fn run(args: QuorumArgs) -> anyhow::Result<()> {
    let QuorumCommand::Describe {
        bootstrap_controller,
        status: _,
        replication,
        tls,
    } = args.command;
    let tls = tls.load()?.context(
        "the controllers answer only over mutual TLS: give --tls-ca, --tls-cert and \
                  --tls-key of a node of the cluster",
    )?;
    let cluster_id = match tls.identity()? {
        ferry_identity::Identity::Node { cluster_id, .. } => cluster_id,
        other => anyhow::bail!("the TLS certificate is for {other}, not for a node of a cluster"),
    };
    let controllers: BTreeMap<i32, String> = bootstrap_controller
        .into_iter()
        .enumerate()
        .map(|(i, a)| (i as i32, a))
        .collect();
    let client =
        ControllerClient::new(&controllers, &cluster_id, &tls).map_err(anyhow::Error::msg)?;
    let state = client
        .describe_quorum()
        .await
        .context("no controller answered")?;
    if replication {
        print!("{}", replication_table(&state));
    } else {
        print!("{}", status_text(&state));
    }
    Ok(())
}

/// Log end offset of the leader (its own entry among the voters).
fn leader_end(state: &DescribeQuorumResponse) -> i64 {
    state
        .voters
        .iter()
        .find(|v| v.replica_id == state.leader_id)
        .map_or(state.high_watermark as i64, |v| v.log_end_offset)
}

/// The `--status` text.
fn status_text(state: &DescribeQuorumResponse) -> String {
    let leader_end = leader_end(state);
    let max_lag = state
        .voters
        .iter()
        .map(|v| leader_end - v.log_end_offset)
        .max()
        .unwrap_or(0);
    let laggard = state.voters.iter().min_by_key(|v| v.log_end_offset);
    let max_lag_ms = match laggard {
        Some(v) if v.replica_id == state.leader_id => 0,
        Some(v) if v.last_caught_up_timestamp >= 0 => {
            let leader_time = state
                .voters
                .iter()
                .map(|v| v.last_caught_up_timestamp)
                .max()
                .unwrap_or(v.last_caught_up_timestamp);
            leader_time - v.last_caught_up_timestamp
        }
        _ => -1,
    };
    let endpoints: BTreeMap<i32, String> = state
        .endpoints
        .iter()
        .map(|e| (e.node_id, format!("CONTROLLER://{}:{}", e.host, e.port)))
        .collect();
    let voters: Vec<String> = state
        .voters
        .iter()
        .map(|v| {
            let endpoint = endpoints.get(&v.replica_id).cloned().unwrap_or_default();
            format!(
                r#"{{"id": {}, "directoryId": null, "endpoints": ["{endpoint}"]}}"#,
                v.replica_id
            )
        })
        .collect();
    let observers: Vec<String> = state
        .observers
        .iter()
        .map(|o| format!(r#"{{"id": {}, "directoryId": null}}"#, o.replica_id))
        .collect();
    format!(
        "ClusterId:              {}\nLeaderId:               {}\nLeaderEpoch:            {}\n\
         HighWatermark:          {}\nMaxFollowerLag:         {}\nMaxFollowerLagTimeMs:   {}\n\
         CurrentVoters:          [{}]\nCurrentObservers:       [{}]\n",
        state.cluster_id,
        state.leader_id,
        state.leader_epoch,
        state.high_watermark,
        max_lag,
        max_lag_ms,
        voters.join(", "),
        observers.join(", ")
    )
}

/// The `--replication` table.
fn replication_table(state: &DescribeQuorumResponse) -> String {
    let leader_end = leader_end(state);
    let row = |r: &ReplicaState, status: &str| {
        let lag = if r.log_end_offset < 0 {
            -1
        } else {
            leader_end - r.log_end_offset
        };
        format!(
            "{:<7} {:<22} {:<13} {:<5} {:<19} {:<22} {}\n",
            r.replica_id,
            "null",
            r.log_end_offset,
            lag,
            r.last_fetch_timestamp,
            r.last_caught_up_timestamp,
            status
        )
    };
    let mut out = format!(
        "{:<7} {:<22} {:<13} {:<5} {:<19} {:<22} {}\n",
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status"
    );
    for voter in &state.voters {
        out += &row(
            voter,
            if voter.replica_id == state.leader_id {
                "Leader"
            } else {
                "Follower"
            },
        );
    }
    for observer in &state.observers {
        out += &row(observer, "Observer");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::controller::v1::Endpoint;

    fn state() -> DescribeQuorumResponse {
        let replica = |id, end, ts| ReplicaState {
            replica_id: id,
            log_end_offset: end,
            last_fetch_timestamp: ts,
            last_caught_up_timestamp: ts,
        };
        DescribeQuorumResponse {
            leader_id: 2,
            leader_epoch: 7,
            high_watermark: 40,
            voters: vec![
                replica(1, 38, 900),
                replica(2, 40, 1000),
                replica(3, 40, 1000),
            ],
            observers: vec![replica(101, 40, 990)],
            endpoints: vec![Endpoint {
                node_id: 1,
                host: "h1".into(),
                port: 9093,
            }],
            cluster_id: "c1".into(),
        }
    }

    #[test]
    fn status_prints_the_fields_kafka_metadata_quorum_prints() {
        let text = status_text(&state());
        for line in [
            "ClusterId:              c1",
            "LeaderId:               2",
            "LeaderEpoch:            7",
            "HighWatermark:          40",
            "MaxFollowerLag:         2",
            "MaxFollowerLagTimeMs:   100",
            r#"CurrentVoters:          [{"id": 1, "directoryId": null, "endpoints": ["CONTROLLER://h1:9093"]}"#,
            r#"CurrentObservers:       [{"id": 101, "directoryId": null}]"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn replication_lists_voters_then_observers_with_lag() {
        let table = replication_table(&state());
        let rows: Vec<Vec<&str>> = table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            vec!["1", "null", "38", "2", "900", "900", "Follower"]
        );
        assert_eq!(rows[1][6], "Leader");
        assert_eq!(
            rows[3],
            vec!["101", "null", "40", "0", "990", "990", "Observer"]
        );
    }
}
