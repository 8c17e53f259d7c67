//! `ferry operation …`: the long-running changes to a cluster (create, grow, configure,
//! delete) and their steps.
//!
//! The `Client` calls here fetch one operation and poll it to its end, which the cluster
//! commands' `--wait` uses too.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use ferry_proto::controlplane::v1 as pb;

use super::print::{
    duration, operation_state, operation_type, print_operation, print_table, show, step_state,
};
use super::{Client, Connection, Output, WAIT_POLL, all_pages, status_error};

/// `ferry operation`.
#[derive(Debug, Args)]
pub(crate) struct OperationArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: OperationCommand,
}

/// `ferry operation` subcommands.
#[derive(Debug, Subcommand)]
enum OperationCommand {
    /// Show one operation with its steps.
    Get {
        /// The operation's id.
        operation: String,
    },
    /// List a cluster's operations, newest first.
    List {
        /// The cluster's id or name.
        cluster: String,
    },
}

impl Client {
    /// One operation with its steps.
    async fn operation(&self, operation_id: &str) -> anyhow::Result<pb::Operation> {
        Ok(self
            .operations()
            .get_operation(self.request(pb::GetOperationRequest {
                operation_id: operation_id.to_string(),
            }))
            .await
            .map_err(status_error)?
            .into_inner())
    }

    /// Polls `operation_id` until it ends, printing each step as it changes (table output).
    pub(super) async fn wait(
        &self,
        operation_id: &str,
        timeout: Duration,
        output: Output,
    ) -> anyhow::Result<pb::Operation> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut shown: BTreeMap<String, (i32, String)> = BTreeMap::new();
        loop {
            let operation = self.operation(operation_id).await?;
            if output == Output::Table {
                for step in &operation.steps {
                    let now = (step.state, step.message.clone());
                    if shown.get(&step.name) != Some(&now)
                        && step.state != pb::StepState::Pending as i32
                    {
                        eprintln!(
                            "  [{:>3}%] {:<20} {:<8} {}",
                            operation.progress_percent,
                            step.name,
                            step_state(step.state),
                            step.message
                        );
                        shown.insert(step.name.clone(), now);
                    }
                }
            }
            let state = pb::OperationState::try_from(operation.state)
                .unwrap_or(pb::OperationState::Unspecified);
            if matches!(
                state,
                pb::OperationState::Succeeded | pb::OperationState::Failed
            ) {
                return Ok(operation);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "operation {operation_id} did not finish within {} s (it goes on; see \
                     `ferry operation get {operation_id}`)",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }
}

/// Runs `ferry operation`.
pub(crate) async fn operation(args: OperationArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    let client = Client::connect(&args.connection).await?;
    match args.command {
        OperationCommand::Get { operation } => {
            let operation = client.operation(&operation).await?;
            show(output, &operation, || {
                print_operation(&operation);
            })
        }
        OperationCommand::List { cluster } => {
            let id = client.cluster_id(&cluster).await?;
            let operations = all_pages(|page_token| {
                let (mut operations, request) = (
                    client.operations(),
                    client.request(pb::ListOperationsRequest {
                        cluster_id: id.clone(),
                        page_size: 0,
                        page_token,
                    }),
                );
                async move {
                    let page = operations.list_operations(request).await?.into_inner();
                    Ok((page.operations, page.next_page_token))
                }
            })
            .await?;
            show(output, &operations, || {
                let rows = operations
                    .iter()
                    .map(|op| {
                        vec![
                            op.id.clone(),
                            operation_type(op.r#type),
                            operation_state(op.state),
                            format!("{}%", op.progress_percent),
                            duration(op.started_at, op.ended_at),
                            op.error
                                .as_ref()
                                .map(|e| format!("{}: {}", e.code, e.message))
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "TYPE", "STATE", "PROGRESS", "TOOK", "ERROR"], rows);
            })
        }
    }
}
