//! The tfplugin6 `Provider` service: decodes Terraform's requests, dispatches by type name to
//! [`crate::cluster`], [`crate::configuration`] and [`crate::data`], and encodes the answers. Errors travel as
//! diagnostics in the responses; a gRPC error status is only returned for a malformed request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rmpv::Value;
use tonic::{Request, Response, Status};

use crate::api::Client;
use crate::proto::tfplugin6 as tf;
use crate::proto::tfplugin6::provider_server::Provider;
use crate::value::{self as v, get};
use crate::{cluster, configuration, data, diag, schema};

/// The provider: the API client once `ConfigureProvider` has run.
#[derive(Clone)]
pub struct FerryProvider {
    client: Arc<RwLock<Option<Client>>>,
    /// Set by StopProvider; every client's waits watch it.
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for FerryProvider {
    fn default() -> Self {
        FerryProvider {
            client: Arc::default(),
            stop: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl FerryProvider {
    /// The configured client, or a diagnostic saying the provider is not configured.
    fn client(&self) -> Result<Client, Vec<tf::Diagnostic>> {
        self.client.read().unwrap().clone().ok_or_else(|| {
            vec![diag::error(
                "Provider not configured",
                "ConfigureProvider has not run (or failed); check the provider block.",
            )]
        })
    }
}

fn decode(value: Option<&tf::DynamicValue>) -> Result<Value, Status> {
    v::decode(value).map_err(Status::invalid_argument)
}

fn unknown_type(type_name: &str) -> Vec<tf::Diagnostic> {
    vec![diag::error(
        "Unknown type",
        format!("terraform-provider-ferry has no {type_name:?}"),
    )]
}

/// A string from the config, else the environment variable, else None (empty counts as unset).
fn setting(config: &Value, name: &str, env: &str) -> Option<String> {
    v::as_str(get(config, name))
        .map(str::to_string)
        .or_else(|| std::env::var(env).ok())
        .filter(|s| !s.is_empty())
}

#[tonic::async_trait]
impl Provider for FerryProvider {
    async fn get_metadata(
        &self,
        _request: Request<tf::get_metadata::Request>,
    ) -> Result<Response<tf::get_metadata::Response>, Status> {
        use tf::get_metadata::{DataSourceMetadata, ResourceMetadata};
        Ok(Response::new(tf::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: [schema::CLUSTER, schema::BOOTSTRAP_BROKERS]
                .map(|t| DataSourceMetadata {
                    type_name: t.into(),
                })
                .to_vec(),
            resources: [schema::CLUSTER, schema::CONFIGURATION]
                .map(|t| ResourceMetadata {
                    type_name: t.into(),
                })
                .to_vec(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<tf::get_provider_schema::Request>,
    ) -> Result<Response<tf::get_provider_schema::Response>, Status> {
        Ok(Response::new(tf::get_provider_schema::Response {
            provider: Some(schema::provider()),
            resource_schemas: HashMap::from([
                (schema::CLUSTER.to_string(), schema::cluster_resource()),
                (
                    schema::CONFIGURATION.to_string(),
                    schema::configuration_resource(),
                ),
            ]),
            data_source_schemas: HashMap::from([
                (schema::CLUSTER.to_string(), schema::cluster_data_source()),
                (
                    schema::BOOTSTRAP_BROKERS.to_string(),
                    schema::bootstrap_brokers_data_source(),
                ),
            ]),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<tf::validate_provider_config::Request>,
    ) -> Result<Response<tf::validate_provider_config::Response>, Status> {
        let config = decode(request.get_ref().config.as_ref())?;
        let mut diagnostics = Vec::new();
        // The control plane serves plain HTTP/2 on loopback or a private network today; the
        // provider's gRPC client is built without TLS, so https:// would fail obscurely later.
        if let Some(endpoint) = v::as_str(get(&config, "endpoint"))
            && !endpoint.starts_with("http://")
        {
            diagnostics.push(diag::error_at(
                diag::attribute("endpoint"),
                "Invalid endpoint",
                format!(
                    "endpoint must be an http:// URL (TLS to the control plane is not supported \
                     yet), not {endpoint:?}"
                ),
            ));
        }
        Ok(Response::new(tf::validate_provider_config::Response {
            diagnostics,
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<tf::validate_resource_config::Request>,
    ) -> Result<Response<tf::validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let config = decode(request.config.as_ref())?;
        let diagnostics = match request.type_name.as_str() {
            schema::CLUSTER => cluster::validate(&config),
            schema::CONFIGURATION => configuration::validate(&config),
            other => unknown_type(other),
        };
        Ok(Response::new(tf::validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<tf::validate_data_resource_config::Request>,
    ) -> Result<Response<tf::validate_data_resource_config::Response>, Status> {
        let request = request.into_inner();
        let config = decode(request.config.as_ref())?;
        let diagnostics = match request.type_name.as_str() {
            schema::CLUSTER => data::validate_cluster(&config),
            schema::BOOTSTRAP_BROKERS => vec![],
            other => unknown_type(other),
        };
        Ok(Response::new(tf::validate_data_resource_config::Response {
            diagnostics,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<tf::upgrade_resource_state::Request>,
    ) -> Result<Response<tf::upgrade_resource_state::Response>, Status> {
        // Schema version 0 is the only one so far: the stored JSON is already current.
        let request = request.into_inner();
        let raw = request.raw_state.unwrap_or_default();
        let (upgraded, diagnostics) = match serde_json::from_slice(&raw.json) {
            Ok(json) => (Some(v::encode(&v::from_json(&json))), vec![]),
            Err(e) => (
                None,
                vec![diag::error(
                    "Unreadable state",
                    format!("the stored {} state is not JSON: {e}", request.type_name),
                )],
            ),
        };
        Ok(Response::new(tf::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics,
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<tf::configure_provider::Request>,
    ) -> Result<Response<tf::configure_provider::Response>, Status> {
        let config = decode(request.get_ref().config.as_ref())?;
        let mut diagnostics = Vec::new();
        let endpoint = setting(&config, "endpoint", "FERRY_ENDPOINT");
        let token = setting(&config, "token", "FERRY_TOKEN");
        match (endpoint, token) {
            (Some(endpoint), Some(_)) if !endpoint.starts_with("http://") => {
                diagnostics.push(diag::error(
                    "Invalid endpoint",
                    format!(
                        "the endpoint (or FERRY_ENDPOINT) must be an http:// URL, not \
                         {endpoint:?}"
                    ),
                ));
            }
            (Some(endpoint), Some(token)) => {
                match Client::new(&endpoint, &token, self.stop.subscribe()) {
                    Ok(client) => *self.client.write().unwrap() = Some(client),
                    Err(e) => diagnostics.push(diag::error_at(
                        diag::attribute("endpoint"),
                        "Invalid endpoint",
                        e,
                    )),
                }
            }
            (endpoint, token) => {
                if endpoint.is_none() {
                    diagnostics.push(diag::error(
                        "No Ferry endpoint",
                        "Set endpoint in the provider block or FERRY_ENDPOINT \
                         (e.g. http://127.0.0.1:7070).",
                    ));
                }
                if token.is_none() {
                    diagnostics.push(diag::error(
                        "No Ferry token",
                        "Set token in the provider block or FERRY_TOKEN (`ferry dev` prints \
                         a token; `ferry token create` makes one).",
                    ));
                }
            }
        }
        Ok(Response::new(tf::configure_provider::Response {
            diagnostics,
        }))
    }

    async fn read_resource(
        &self,
        request: Request<tf::read_resource::Request>,
    ) -> Result<Response<tf::read_resource::Response>, Status> {
        let request = request.into_inner();
        let current = decode(request.current_state.as_ref())?;
        let result = match (request.type_name.as_str(), self.client()) {
            (schema::CLUSTER, Ok(client)) => cluster::read(&client, &current).await,
            (schema::CONFIGURATION, Ok(client)) => configuration::read(&client, &current).await,
            (schema::CLUSTER | schema::CONFIGURATION, Err(d)) => Err(d),
            (other, _) => Err(unknown_type(other)),
        };
        let (new_state, diagnostics) = match result {
            Ok(state) => (Some(v::encode(&state)), vec![]),
            Err(d) => (request.current_state, d),
        };
        Ok(Response::new(tf::read_resource::Response {
            new_state,
            diagnostics,
            private: request.private,
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<tf::plan_resource_change::Request>,
    ) -> Result<Response<tf::plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let prior = decode(request.prior_state.as_ref())?;
        let proposed = decode(request.proposed_new_state.as_ref())?;
        let plan = match request.type_name.as_str() {
            schema::CLUSTER => cluster::plan(&prior, &proposed),
            schema::CONFIGURATION => configuration::plan(&prior, &proposed),
            _ => {
                return Ok(Response::new(tf::plan_resource_change::Response {
                    planned_state: request.proposed_new_state,
                    requires_replace: vec![],
                    planned_private: vec![],
                    diagnostics: unknown_type(&request.type_name),
                }));
            }
        };
        Ok(Response::new(tf::plan_resource_change::Response {
            planned_state: Some(v::encode(&plan.planned)),
            requires_replace: plan.requires_replace,
            planned_private: request.prior_private,
            diagnostics: plan.diagnostics,
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<tf::apply_resource_change::Request>,
    ) -> Result<Response<tf::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let prior = decode(request.prior_state.as_ref())?;
        let planned = decode(request.planned_state.as_ref())?;
        let (state, diagnostics) = match (request.type_name.as_str(), self.client()) {
            (schema::CLUSTER, Ok(client)) => {
                let applied = cluster::apply(&client, &prior, &planned).await;
                (applied.state, applied.diagnostics)
            }
            (schema::CONFIGURATION, Ok(client)) => {
                let applied = configuration::apply(&client, &prior, &planned).await;
                (applied.state, applied.diagnostics)
            }
            (schema::CLUSTER | schema::CONFIGURATION, Err(d)) => (prior, d),
            (other, _) => (prior, unknown_type(other)),
        };
        Ok(Response::new(tf::apply_resource_change::Response {
            new_state: Some(v::encode(&state)),
            private: vec![],
            diagnostics,
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<tf::import_resource_state::Request>,
    ) -> Result<Response<tf::import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let result = match (request.type_name.as_str(), self.client()) {
            (schema::CLUSTER, Ok(client)) => cluster::import(&client, &request.id).await,
            (schema::CONFIGURATION, Ok(client)) => {
                configuration::import(&client, &request.id).await
            }
            (schema::CLUSTER | schema::CONFIGURATION, Err(d)) => Err(d),
            (other, _) => Err(unknown_type(other)),
        };
        let (imported_resources, diagnostics) = match result {
            Ok(state) => (
                vec![tf::import_resource_state::ImportedResource {
                    type_name: request.type_name,
                    state: Some(v::encode(&state)),
                    private: vec![],
                }],
                vec![],
            ),
            Err(d) => (vec![], d),
        };
        Ok(Response::new(tf::import_resource_state::Response {
            imported_resources,
            diagnostics,
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<tf::read_data_source::Request>,
    ) -> Result<Response<tf::read_data_source::Response>, Status> {
        let request = request.into_inner();
        let config = decode(request.config.as_ref())?;
        let result = match self.client() {
            Ok(client) => data::read(&client, &request.type_name, &config).await,
            Err(d) => Err(d),
        };
        let (state, diagnostics) = match result {
            Ok(state) => (Some(v::encode(&state)), vec![]),
            Err(d) => (None, d),
        };
        Ok(Response::new(tf::read_data_source::Response {
            state,
            diagnostics,
        }))
    }

    async fn get_functions(
        &self,
        _request: Request<tf::get_functions::Request>,
    ) -> Result<Response<tf::get_functions::Response>, Status> {
        Ok(Response::new(tf::get_functions::Response {
            diagnostics: vec![],
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<tf::stop_provider::Request>,
    ) -> Result<Response<tf::stop_provider::Response>, Status> {
        // In-flight waits end now with an error saying so; the API operations go on, so
        // there is nothing to undo.
        self.stop.send_replace(true);
        Ok(Response::new(tf::stop_provider::Response {
            error: String::new(),
        }))
    }
}

/// `plan_destroy`: Terraform plans destroys through us, so deletion protection refuses at
/// plan time rather than mid-apply.
fn capabilities() -> tf::ServerCapabilities {
    tf::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}
