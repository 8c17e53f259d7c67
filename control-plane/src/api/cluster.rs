//! `ClusterService`: create, read, list, update and delete the tenant's clusters.

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_server::ClusterService;
use tonic::{Request, Response, Status};

use super::convert::{self, NodeStates};
use super::{Api, page_request, require_id, status, violation};
use crate::auth::Action;
use crate::model::limits::TenantLimit;
use crate::model::{OperationType, PageRequest, placement_hosts};
use crate::placement::{self, Placement};
use crate::spec::{self, ValidationContext};
use crate::store::Store;
use crate::store::state::CLIENT_REQUEST_ID_LEN_MAX;

/// A request's `current_version`: 0 means "whatever the current version is".
fn expected_version(current_version: u64) -> Option<u64> {
    (current_version != 0).then_some(current_version)
}

impl<S: Store> Api<S> {
    /// The tenant's cluster `cluster_id`, which must be given.
    async fn tenant_cluster(
        &self,
        tenant: &str,
        cluster_id: &str,
    ) -> Result<crate::model::Cluster, Status> {
        require_id("cluster_id", cluster_id)?;
        Ok(self.store().get_cluster(tenant, cluster_id).await?)
    }

    /// The node states the agents reported, over every host.
    async fn node_states(&self) -> Result<NodeStates, Status> {
        Ok(convert::node_states(&self.all_hosts().await?))
    }
}

#[tonic::async_trait]
impl<S: Store> ClusterService for Api<S> {
    async fn create_cluster(
        &self,
        request: Request<pb::CreateClusterRequest>,
    ) -> Result<Response<pb::CreateClusterResponse>, Status> {
        let principal = self.authorize(&request, Action::Create)?;
        let request = request.into_inner();

        let hosts = self.all_hosts().await?;
        let context = ValidationContext {
            zones_with_hosts: hosts.iter().map(|h| h.zone.clone()).collect(),
            kafka_versions: self.inner.config.kafka_versions.clone(),
        };
        let mut violations = Vec::new();
        let spec = match request.spec {
            None => {
                violations.push(violation("spec", "is required"));
                None
            }
            Some(spec) => {
                let spec = convert::spec_from_proto(spec);
                if let Err(found) = spec::validate(&spec, &context) {
                    violations.extend(found);
                }
                Some(spec)
            }
        };
        if request.client_request_id.chars().count() > CLIENT_REQUEST_ID_LEN_MAX {
            violations.push(violation(
                "client_request_id",
                format!("must be at most {CLIENT_REQUEST_ID_LEN_MAX} characters"),
            ));
        }
        let spec = match spec {
            Some(spec) if violations.is_empty() => spec,
            _ => return Err(status::invalid_argument(&violations)),
        };

        let shape = placement::Request::for_spec(&spec, self.inner.config.controller_storage_bytes);
        match placement::plan(
            &shape,
            &placement_hosts(&hosts, None),
            &Placement::default(),
        ) {
            Ok(_) => {}
            Err(placement::Error::Insufficient(shortage)) => {
                return Err(status::insufficient_capacity(&shortage));
            }
            Err(err @ placement::Error::InvalidRequest(_)) => {
                // Validation refuses every request placement calls invalid; reaching here means
                // the two disagree.
                return Err(Status::internal(err.to_string()));
            }
        }

        let client_request_id =
            (!request.client_request_id.is_empty()).then_some(request.client_request_id);
        // Checked again when the store applies the create; checking here keeps a request over
        // the limit out of the raft log. A retry with a request id is the store's to answer
        // (it returns the cluster already made), so it is not refused here.
        if client_request_id.is_none() {
            let usage = self.store().tenant_usage(&principal.tenant).await?;
            TenantLimit::Clusters.check_one_more(&principal.tenant, usage.clusters)?;
        }
        let (cluster, operation) = self
            .store()
            .create_cluster(&principal.tenant, spec, client_request_id)
            .await?;
        Ok(Response::new(pb::CreateClusterResponse {
            cluster: Some(convert::cluster_to_proto(&cluster, &NodeStates::new())),
            operation: Some(convert::operation_to_proto(&operation)),
        }))
    }

    async fn get_cluster(
        &self,
        request: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        let cluster = self
            .tenant_cluster(&principal.tenant, &request.cluster_id)
            .await?;
        let states = self.node_states().await?;
        Ok(Response::new(convert::cluster_to_proto(&cluster, &states)))
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        let page = self
            .store()
            .list_clusters(
                &principal.tenant,
                &request.name_prefix,
                page_request(request.page_size, request.page_token),
            )
            .await?;
        let states = self.node_states().await?;
        Ok(Response::new(pb::ListClustersResponse {
            clusters: page
                .items
                .iter()
                .map(|c| convert::cluster_to_proto(c, &states))
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn delete_cluster(
        &self,
        request: Request<pb::DeleteClusterRequest>,
    ) -> Result<Response<pb::DeleteClusterResponse>, Status> {
        let principal = self.authorize(&request, Action::Delete)?;
        let request = request.into_inner();
        require_id("cluster_id", &request.cluster_id)?;
        let expected_version = expected_version(request.current_version);
        let (cluster, operation) = self
            .store()
            .delete_cluster(&principal.tenant, &request.cluster_id, expected_version)
            .await?;
        let states = self.node_states().await?;
        Ok(Response::new(pb::DeleteClusterResponse {
            cluster: Some(convert::cluster_to_proto(&cluster, &states)),
            operation: Some(convert::operation_to_proto(&operation)),
        }))
    }

    async fn get_bootstrap_brokers(
        &self,
        request: Request<pb::GetBootstrapBrokersRequest>,
    ) -> Result<Response<pb::GetBootstrapBrokersResponse>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        let cluster = self
            .tenant_cluster(&principal.tenant, &request.cluster_id)
            .await?;
        Ok(Response::new(pb::GetBootstrapBrokersResponse {
            bootstrap_brokers: cluster.bootstrap_brokers(),
        }))
    }

    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        let mut violations = Vec::new();
        if request.cluster_id.is_empty() {
            violations.push(violation("cluster_id", "is required"));
        }
        // The token is the last node id of the previous page.
        let after = match request.page_token.as_str() {
            "" => None,
            token => match token.parse::<placement::NodeId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    violations.push(violation("page_token", "is not a token this API gave"));
                    None
                }
            },
        };
        if !violations.is_empty() {
            return Err(status::invalid_argument(&violations));
        }
        let cluster = self
            .store()
            .get_cluster(&principal.tenant, &request.cluster_id)
            .await?;
        let states = self.node_states().await?;
        let size = PageRequest::first(request.page_size).size();
        let mut nodes: Vec<_> = cluster
            .status
            .placement
            .iter()
            .filter(|a| after.is_none_or(|after| a.node_id > after))
            .take(size + 1)
            .collect();
        let next_page_token = if nodes.len() > size {
            nodes.truncate(size);
            nodes
                .last()
                .map(|a| a.node_id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListNodesResponse {
            nodes: nodes
                .into_iter()
                .map(|a| convert::node_to_proto(&cluster.id, a, &states))
                .collect(),
            next_page_token,
        }))
    }

    async fn update_broker_count(
        &self,
        request: Request<pb::UpdateBrokerCountRequest>,
    ) -> Result<Response<pb::UpdateClusterResponse>, Status> {
        let principal = self.authorize(&request, Action::Update)?;
        let request = request.into_inner();
        let cluster = self
            .tenant_cluster(&principal.tenant, &request.cluster_id)
            .await?;
        let mut spec = cluster.spec.clone();
        spec.broker_count = request.broker_count;

        let hosts = self.all_hosts().await?;
        let mut violations = self.spec_violations(&spec, &hosts, "broker_count");
        if violations.is_empty() && request.broker_count <= cluster.spec.broker_count {
            violations.push(violation(
                "broker_count",
                format!(
                    "must be above the current {} (removing brokers is not supported yet)",
                    cluster.spec.broker_count
                ),
            ));
        }
        if !violations.is_empty() {
            return Err(status::invalid_argument(&violations));
        }
        // The new brokers must fit, next to the nodes already placed.
        let shape = placement::Request::for_spec(&spec, self.inner.config.controller_storage_bytes);
        let current = Placement {
            nodes: cluster.status.placement.clone(),
        };
        match placement::plan(
            &shape,
            &placement_hosts(&hosts, Some(&cluster.id)),
            &current,
        ) {
            Ok(_) => {}
            Err(placement::Error::Insufficient(shortage)) => {
                return Err(status::insufficient_capacity(&shortage));
            }
            Err(err @ placement::Error::InvalidRequest(_)) => {
                return Err(Status::internal(err.to_string()));
            }
        }

        let expected_version = expected_version(request.current_version);
        let (cluster, operation) = self
            .store()
            .update_spec(
                &principal.tenant,
                &request.cluster_id,
                OperationType::UpdateBrokerCount,
                spec,
                expected_version,
            )
            .await?;
        let states = convert::node_states(&hosts);
        Ok(Response::new(pb::UpdateClusterResponse {
            cluster: Some(convert::cluster_to_proto(&cluster, &states)),
            operation: Some(convert::operation_to_proto(&operation)),
        }))
    }

    async fn update_cluster_configuration(
        &self,
        request: Request<pb::UpdateClusterConfigurationRequest>,
    ) -> Result<Response<pb::UpdateClusterResponse>, Status> {
        let principal = self.authorize(&request, Action::Update)?;
        let request = request.into_inner();
        let mut violations = Vec::new();
        if request.cluster_id.is_empty() {
            violations.push(violation("cluster_id", "is required"));
        }
        let reference = match request.configuration {
            None => {
                violations.push(violation("configuration", "is required"));
                None
            }
            Some(info) => {
                let reference = convert::configuration_ref_from_proto(info);
                spec::check_configuration_ref("configuration", &reference, &mut violations);
                Some(reference)
            }
        };
        let reference = match reference {
            Some(reference) if violations.is_empty() => reference,
            _ => return Err(status::invalid_argument(&violations)),
        };
        let cluster = self
            .tenant_cluster(&principal.tenant, &request.cluster_id)
            .await?;
        let mut spec = cluster.spec.clone();
        spec.configuration = Some(reference);
        let expected_version = expected_version(request.current_version);
        // The store checks that the revision exists in the tenant and starts the operation in
        // the same step.
        let (cluster, operation) = self
            .store()
            .update_spec(
                &principal.tenant,
                &request.cluster_id,
                OperationType::UpdateConfiguration,
                spec,
                expected_version,
            )
            .await?;
        let states = self.node_states().await?;
        Ok(Response::new(pb::UpdateClusterResponse {
            cluster: Some(convert::cluster_to_proto(&cluster, &states)),
            operation: Some(convert::operation_to_proto(&operation)),
        }))
    }

    async fn update_tags(
        &self,
        request: Request<pb::UpdateTagsRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        let principal = self.authorize(&request, Action::Update)?;
        let request = request.into_inner();
        let cluster = self
            .tenant_cluster(&principal.tenant, &request.cluster_id)
            .await?;
        let mut spec = cluster.spec.clone();
        spec.tags = request.tags.into_iter().collect();
        let hosts = self.all_hosts().await?;
        let violations = self.spec_violations(&spec, &hosts, "tags");
        if !violations.is_empty() {
            return Err(status::invalid_argument(&violations));
        }
        let expected_version = expected_version(request.current_version);
        let cluster = self
            .store()
            .update_tags(
                &principal.tenant,
                &request.cluster_id,
                spec.tags,
                expected_version,
            )
            .await?;
        Ok(Response::new(convert::cluster_to_proto(
            &cluster,
            &convert::node_states(&hosts),
        )))
    }
}

impl<S: Store> Api<S> {
    /// The violations of `spec` about `field` (an update changes one field; the others were
    /// valid when stored and a host going away since is not this request's fault).
    fn spec_violations(
        &self,
        spec: &spec::ClusterSpec,
        hosts: &[crate::model::Host],
        field: &str,
    ) -> Vec<spec::FieldViolation> {
        let context = ValidationContext {
            zones_with_hosts: hosts.iter().map(|h| h.zone.clone()).collect(),
            kafka_versions: self.inner.config.kafka_versions.clone(),
        };
        match spec::validate(spec, &context) {
            Ok(()) => Vec::new(),
            Err(found) => found
                .into_iter()
                .filter(|v| {
                    v.field == field
                        || v.field.starts_with(&format!("{field}."))
                        || v.field.starts_with(&format!("{field}["))
                })
                .collect(),
        }
    }
}
