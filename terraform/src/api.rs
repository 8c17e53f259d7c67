//! The control-plane API as the provider uses it: a gRPC channel plus the bearer token, one
//! method per call, and API errors turned into Terraform diagnostics (field violations point
//! at the attribute they name).

use std::time::Duration;

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::configuration_service_client::ConfigurationServiceClient;
use ferry_proto::controlplane::v1::operation_service_client::OperationServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::diag;
use crate::proto::tfplugin6::Diagnostic;

/// How often a wait polls the operation.
const POLL: Duration = Duration::from_millis(500);
/// Transient errors (UNAVAILABLE) tolerated in a row while waiting, about 15 s of outage.
const TRANSIENT_ERRORS_MAX: u32 = 30;

/// A failed call or wait.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error status.
    #[error("{}: {}", .0.code(), .0.message())]
    Status(Status),
    /// The operation ended FAILED.
    #[error("operation {id} failed: {code}: {message}")]
    OperationFailed {
        /// The operation id.
        id: String,
        /// The operation's error code.
        code: String,
        /// The operation's error message.
        message: String,
    },
    /// Terraform called StopProvider (e.g. Ctrl-C) during the wait; the operation goes on.
    #[error(
        "Terraform asked the provider to stop while it waited for operation {id}; the operation \
         goes on in the control plane"
    )]
    Stopped {
        /// The operation id.
        id: String,
    },
    /// The wait hit its timeout; the operation goes on.
    #[error(
        "operation {id} did not finish within {timeout:?} (last: {last}); it goes on in the \
         control plane"
    )]
    Timeout {
        /// The operation id.
        id: String,
        /// The timeout that was hit.
        timeout: Duration,
        /// The operation's state and current step when we gave up.
        last: String,
    },
}

impl Error {
    /// Whether the API said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status(s) if s.code() == Code::NotFound)
    }

    /// The error as diagnostics: one per field violation (on its attribute), else one.
    pub fn diagnostics(&self, summary: &str) -> Vec<Diagnostic> {
        if let Error::Status(status) = self
            && let Some(bad_request) = status.get_details_bad_request()
            && !bad_request.field_violations.is_empty()
        {
            return bad_request
                .field_violations
                .iter()
                .map(|v| {
                    let detail = format!("{}: {}", v.field, v.description);
                    match diag::path(&v.field) {
                        Some(path) => diag::error_at(path, summary, detail),
                        None => diag::error(summary, detail),
                    }
                })
                .collect();
        }
        let reason = match self {
            Error::Status(status) => status
                .get_details_error_info()
                .map(|info| format!(" ({})", info.reason))
                .unwrap_or_default(),
            _ => String::new(),
        };
        vec![diag::error(summary, format!("{self}{reason}"))]
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Status(status)
    }
}

/// Result of an API call.
pub type Result<T> = std::result::Result<T, Error>;

/// A configured connection to the control plane. Its `Debug` output leaves the token out.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    token: String,
    /// Becomes true when Terraform calls StopProvider: waits end early.
    stop: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("channel", &self.channel)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `endpoint`; connects lazily, so a wrong address fails at the first call.
    pub fn new(
        endpoint: &str,
        token: &str,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> std::result::Result<Client, String> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?
            .connect_timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Client {
            channel,
            token: token.to_string(),
            stop,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(Duration::from_secs(30));
        if let Ok(value) = format!("Bearer {}", self.token).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    fn clusters(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(self.channel.clone())
    }

    fn operations(&self) -> OperationServiceClient<Channel> {
        OperationServiceClient::new(self.channel.clone())
    }

    /// CreateCluster; `request_id` makes a retried create idempotent.
    pub async fn create(
        &self,
        spec: pb::ClusterSpec,
        request_id: &str,
    ) -> Result<pb::CreateClusterResponse> {
        let request = pb::CreateClusterRequest {
            spec: Some(spec),
            client_request_id: request_id.to_string(),
        };
        let mut attempt = 0;
        loop {
            // UNAVAILABLE means nothing happened, and the request id makes a repeat safe anyway.
            match self
                .clusters()
                .create_cluster(self.request(request.clone()))
                .await
            {
                Err(s) if s.code() == Code::Unavailable && attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(POLL * attempt).await;
                }
                other => return Ok(other?.into_inner()),
            }
        }
    }

    /// GetCluster.
    pub async fn get(&self, id: &str) -> Result<pb::Cluster> {
        let request = pb::GetClusterRequest {
            cluster_id: id.to_string(),
        };
        Ok(self
            .clusters()
            .get_cluster(self.request(request))
            .await?
            .into_inner())
    }

    /// The cluster named exactly `name`, if any.
    pub async fn find_by_name(&self, name: &str) -> Result<Option<pb::Cluster>> {
        let mut page_token = String::new();
        loop {
            let request = pb::ListClustersRequest {
                name_prefix: name.to_string(),
                page_size: 0,
                page_token,
            };
            let page = self
                .clusters()
                .list_clusters(self.request(request))
                .await?
                .into_inner();
            if let Some(found) = page
                .clusters
                .into_iter()
                .find(|c| c.spec.as_ref().is_some_and(|s| s.name == name))
            {
                return Ok(Some(found));
            }
            if page.next_page_token.is_empty() {
                return Ok(None);
            }
            page_token = page.next_page_token;
        }
    }

    /// DeleteCluster.
    pub async fn delete(&self, id: &str) -> Result<pb::DeleteClusterResponse> {
        let request = pb::DeleteClusterRequest {
            cluster_id: id.to_string(),
            current_version: 0,
        };
        Ok(self
            .clusters()
            .delete_cluster(self.request(request))
            .await?
            .into_inner())
    }

    /// UpdateBrokerCount (grow only).
    pub async fn update_broker_count(
        &self,
        id: &str,
        broker_count: u32,
    ) -> Result<pb::UpdateClusterResponse> {
        let request = pb::UpdateBrokerCountRequest {
            cluster_id: id.to_string(),
            current_version: 0,
            broker_count,
        };
        Ok(self
            .clusters()
            .update_broker_count(self.request(request))
            .await?
            .into_inner())
    }

    /// UpdateTags (replaces the whole tag map).
    pub async fn update_tags(
        &self,
        id: &str,
        tags: std::collections::HashMap<String, String>,
    ) -> Result<pb::Cluster> {
        let request = pb::UpdateTagsRequest {
            cluster_id: id.to_string(),
            current_version: 0,
            tags,
        };
        Ok(self
            .clusters()
            .update_tags(self.request(request))
            .await?
            .into_inner())
    }

    /// UpdateClusterConfiguration: starts the rolling restart onto `revision`.
    pub async fn update_cluster_configuration(
        &self,
        id: &str,
        configuration_id: &str,
        revision: u64,
    ) -> Result<pb::UpdateClusterResponse> {
        let request = pb::UpdateClusterConfigurationRequest {
            cluster_id: id.to_string(),
            current_version: 0,
            configuration: Some(pb::ConfigurationInfo {
                id: configuration_id.to_string(),
                revision,
            }),
        };
        Ok(self
            .clusters()
            .update_cluster_configuration(self.request(request))
            .await?
            .into_inner())
    }

    fn configurations(&self) -> ConfigurationServiceClient<Channel> {
        ConfigurationServiceClient::new(self.channel.clone())
    }

    /// CreateConfiguration.
    pub async fn create_configuration(
        &self,
        request: pb::CreateConfigurationRequest,
    ) -> Result<pb::Configuration> {
        Ok(self
            .configurations()
            .create_configuration(self.request(request))
            .await?
            .into_inner())
    }

    /// UpdateConfiguration: the next revision.
    pub async fn update_configuration(
        &self,
        request: pb::UpdateConfigurationRequest,
    ) -> Result<pb::Configuration> {
        Ok(self
            .configurations()
            .update_configuration(self.request(request))
            .await?
            .into_inner())
    }

    /// GetConfiguration.
    pub async fn get_configuration(&self, id: &str) -> Result<pb::Configuration> {
        let request = pb::GetConfigurationRequest {
            configuration_id: id.to_string(),
        };
        Ok(self
            .configurations()
            .get_configuration(self.request(request))
            .await?
            .into_inner())
    }

    /// The configuration named `name`, if the tenant has one.
    pub async fn find_configuration_by_name(
        &self,
        name: &str,
    ) -> Result<Option<pb::Configuration>> {
        let mut page_token = String::new();
        loop {
            let request = pb::ListConfigurationsRequest {
                page_size: 0,
                page_token,
            };
            let page = self
                .configurations()
                .list_configurations(self.request(request))
                .await?
                .into_inner();
            if let Some(found) = page.configurations.into_iter().find(|c| c.name == name) {
                return Ok(Some(found));
            }
            if page.next_page_token.is_empty() {
                return Ok(None);
            }
            page_token = page.next_page_token;
        }
    }

    /// GetConfigurationRevision (with its properties text).
    pub async fn get_configuration_revision(
        &self,
        id: &str,
        revision: u64,
    ) -> Result<pb::ConfigurationRevision> {
        let request = pb::GetConfigurationRevisionRequest {
            configuration_id: id.to_string(),
            revision,
        };
        Ok(self
            .configurations()
            .get_configuration_revision(self.request(request))
            .await?
            .into_inner())
    }

    /// DeleteConfiguration (refused while a cluster uses it).
    pub async fn delete_configuration(&self, id: &str) -> Result<()> {
        let request = pb::DeleteConfigurationRequest {
            configuration_id: id.to_string(),
        };
        self.configurations()
            .delete_configuration(self.request(request))
            .await?;
        Ok(())
    }

    /// GetBootstrapBrokers.
    pub async fn bootstrap_brokers(&self, id: &str) -> Result<String> {
        let request = pb::GetBootstrapBrokersRequest {
            cluster_id: id.to_string(),
        };
        Ok(self
            .clusters()
            .get_bootstrap_brokers(self.request(request))
            .await?
            .into_inner()
            .bootstrap_brokers)
    }

    /// Polls operation `id` until it SUCCEEDED (Ok) or FAILED (its error), or `timeout`.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<pb::Operation> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut transient = 0;
        let mut last = String::from("not read yet");
        loop {
            let request = pb::GetOperationRequest {
                operation_id: id.to_string(),
            };
            match self.operations().get_operation(self.request(request)).await {
                Ok(operation) => {
                    transient = 0;
                    let operation = operation.into_inner();
                    let state = operation.state();
                    if state == pb::OperationState::Succeeded {
                        return Ok(operation);
                    }
                    if state == pb::OperationState::Failed {
                        let error = operation.error.clone().unwrap_or_default();
                        return Err(Error::OperationFailed {
                            id: id.to_string(),
                            code: error.code,
                            message: error.message,
                        });
                    }
                    last = describe(&operation);
                }
                Err(s) if s.code() == Code::Unavailable && transient < TRANSIENT_ERRORS_MAX => {
                    transient += 1;
                }
                Err(s) => return Err(s.into()),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    id: id.to_string(),
                    timeout,
                    last,
                });
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|stopped| *stopped) => {
                    return Err(Error::Stopped { id: id.to_string() });
                }
            }
        }
    }
}

/// An operation's state and running step, for a timeout message.
fn describe(operation: &pb::Operation) -> String {
    let step = operation
        .steps
        .iter()
        .find(|s| s.state() == pb::StepState::Running)
        .map(|s| format!(", step {} {}", s.name, s.message))
        .unwrap_or_default();
    format!(
        "{} at {}%{step}",
        operation.state().as_str_name(),
        operation.progress_percent
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn field_violations_become_one_diagnostic_each_on_its_attribute() {
        let details = ErrorDetails::with_bad_request(vec![
            FieldViolation::new("broker_count", "must be a multiple of the number of zones"),
            FieldViolation::new("zones[2]", "no registered host serves zone \"z\""),
        ]);
        let status = Status::with_error_details(Code::InvalidArgument, "bad", details);
        let diagnostics = Error::from(status).diagnostics("Creating cluster \"x\" failed");
        assert_eq!(diagnostics.len(), 2);
        assert_eq!(diagnostics[0].attribute, diag::path("broker_count"));
        assert_eq!(diagnostics[1].attribute, diag::path("zones[2]"));
        assert_eq!(
            diagnostics[1].detail,
            "zones[2]: no registered host serves zone \"z\""
        );
    }

    #[test]
    fn a_failed_operation_reports_its_code_and_message() {
        let error = Error::OperationFailed {
            id: "op-1".into(),
            code: "NODE_START_FAILED".into(),
            message: "node 101 exited: address in use".into(),
        };
        let diagnostics = error.diagnostics("Creating cluster \"x\" failed");
        assert_eq!(
            diagnostics[0].detail,
            "operation op-1 failed: NODE_START_FAILED: node 101 exited: address in use"
        );
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[tokio::test]
    async fn debug_output_leaves_the_token_out() {
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let client = Client::new("http://127.0.0.1:1", "eyJ.secret-claims.sig", stopped).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("secret-claims"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
