//! `ConfigurationService`: the tenant's configurations and their immutable revisions.
//!
//! Create and Update validate the properties text with [`crate::configuration`] (every bad
//! line and key at once, as field violations of `server_properties`) before the store sees
//! anything; the store keeps the text and its parsed map. Delete is the store's to refuse
//! while a cluster references the configuration.
//!
//! Only GetConfigurationRevision reads a revision's properties: Get and List answer from
//! summaries and ListConfigurationRevisions from revision metadata, so no list call carries
//! revision bodies, inside the control plane or on the wire. Create and Update check the
//! tenant's limits ([`crate::model::limits`]) before proposing; the store checks them again
//! when it applies.

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::configuration_service_server::ConfigurationService;
use tonic::{Request, Response, Status};

use super::{Api, convert, page_request, require_id, status, violation};
use crate::auth::Action;
use crate::configuration::{self, DESCRIPTION_LEN_MAX};
use crate::model::limits::{TenantLimit, check_one_more_revision};
use crate::model::{ConfigurationSummary, Revision};
use crate::spec::{self, FieldViolation};
use crate::store::Store;

impl<S: Store> Api<S> {
    /// The tenant's configuration `configuration_id` (which must be given), without revision
    /// properties.
    async fn tenant_configuration(
        &self,
        tenant: &str,
        configuration_id: &str,
    ) -> Result<ConfigurationSummary, Status> {
        require_id("configuration_id", configuration_id)?;
        Ok(self
            .store()
            .configuration_summary(tenant, configuration_id)
            .await?)
    }
}

/// A new revision from a request's description and properties, or every violation of them.
fn revision(
    description: String,
    server_properties: String,
    violations: &mut Vec<FieldViolation>,
) -> Option<Revision> {
    let len = description.chars().count();
    if len > DESCRIPTION_LEN_MAX {
        violations.push(violation(
            "description",
            format!("must be at most {DESCRIPTION_LEN_MAX} characters, not {len}"),
        ));
    }
    match configuration::parse_and_validate("server_properties", &server_properties) {
        Ok(properties) => Some(Revision {
            revision: 0,
            description,
            server_properties,
            properties,
            created_at_ms: 0,
        }),
        Err(found) => {
            violations.extend(found);
            None
        }
    }
}

#[tonic::async_trait]
impl<S: Store> ConfigurationService for Api<S> {
    async fn create_configuration(
        &self,
        request: Request<pb::CreateConfigurationRequest>,
    ) -> Result<Response<pb::Configuration>, Status> {
        let principal = self.authorize(&request, Action::Create)?;
        let request = request.into_inner();
        let mut violations = Vec::new();
        let mut name_violations = Vec::new();
        spec::check_name(&request.name, &mut name_violations);
        violations.extend(name_violations);
        for (i, version) in request.kafka_versions.iter().enumerate() {
            if !self.inner.config.kafka_versions.contains(version) {
                let offered: Vec<&str> = self
                    .inner
                    .config
                    .kafka_versions
                    .iter()
                    .map(String::as_str)
                    .collect();
                violations.push(violation(
                    &format!("kafka_versions[{i}]"),
                    format!(
                        "{version:?} is not offered; choose from: {}",
                        offered.join(", ")
                    ),
                ));
            }
        }
        let revision = revision(
            request.description,
            request.server_properties,
            &mut violations,
        );
        let revision = match revision {
            Some(revision) if violations.is_empty() => revision,
            _ => return Err(status::invalid_argument(&violations)),
        };
        let usage = self.store().tenant_usage(&principal.tenant).await?;
        TenantLimit::Configurations.check_one_more(&principal.tenant, usage.configurations)?;
        let configuration = self
            .store()
            .create_configuration(
                &principal.tenant,
                &request.name,
                request.kafka_versions,
                revision,
            )
            .await?;
        Ok(Response::new(convert::configuration_to_proto(
            &configuration,
        )))
    }

    async fn get_configuration(
        &self,
        request: Request<pb::GetConfigurationRequest>,
    ) -> Result<Response<pb::Configuration>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        let configuration = self
            .tenant_configuration(&principal.tenant, &request.configuration_id)
            .await?;
        Ok(Response::new(convert::configuration_summary_to_proto(
            &configuration,
        )))
    }

    async fn list_configurations(
        &self,
        request: Request<pb::ListConfigurationsRequest>,
    ) -> Result<Response<pb::ListConfigurationsResponse>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        let page = self
            .store()
            .list_configurations(
                &principal.tenant,
                page_request(request.page_size, request.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListConfigurationsResponse {
            configurations: page
                .items
                .iter()
                .map(convert::configuration_summary_to_proto)
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn update_configuration(
        &self,
        request: Request<pb::UpdateConfigurationRequest>,
    ) -> Result<Response<pb::Configuration>, Status> {
        let principal = self.authorize(&request, Action::Update)?;
        let request = request.into_inner();
        require_id("configuration_id", &request.configuration_id)?;
        let mut violations = Vec::new();
        let revision = revision(
            request.description,
            request.server_properties,
            &mut violations,
        );
        let revision = match revision {
            Some(revision) if violations.is_empty() => revision,
            _ => return Err(status::invalid_argument(&violations)),
        };
        // Revisions are numbered from 1 and never removed: the latest number is the count.
        let current = self
            .tenant_configuration(&principal.tenant, &request.configuration_id)
            .await?;
        let held = usize::try_from(current.latest.revision).unwrap_or(usize::MAX);
        check_one_more_revision(&current.id, held)?;
        let configuration = self
            .store()
            .update_configuration(&principal.tenant, &request.configuration_id, revision)
            .await?;
        Ok(Response::new(convert::configuration_to_proto(
            &configuration,
        )))
    }

    async fn list_configuration_revisions(
        &self,
        request: Request<pb::ListConfigurationRevisionsRequest>,
    ) -> Result<Response<pb::ListConfigurationRevisionsResponse>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        // The token is the last revision of the previous page (newest first).
        if !request.page_token.is_empty() && request.page_token.parse::<u64>().is_err() {
            return Err(status::invalid_argument(&[violation(
                "page_token",
                "is not a token this API gave",
            )]));
        }
        require_id("configuration_id", &request.configuration_id)?;
        let page = self
            .store()
            .list_revisions(
                &principal.tenant,
                &request.configuration_id,
                page_request(request.page_size, request.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListConfigurationRevisionsResponse {
            revisions: page
                .items
                .iter()
                .map(convert::revision_info_to_proto)
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn get_configuration_revision(
        &self,
        request: Request<pb::GetConfigurationRevisionRequest>,
    ) -> Result<Response<pb::ConfigurationRevision>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        require_id("configuration_id", &request.configuration_id)?;
        let revision = self
            .store()
            .get_revision(
                &principal.tenant,
                &request.configuration_id,
                request.revision,
            )
            .await?;
        Ok(Response::new(convert::revision_to_proto(&revision)))
    }

    async fn delete_configuration(
        &self,
        request: Request<pb::DeleteConfigurationRequest>,
    ) -> Result<Response<pb::DeleteConfigurationResponse>, Status> {
        let principal = self.authorize(&request, Action::Delete)?;
        let request = request.into_inner();
        require_id("configuration_id", &request.configuration_id)?;
        self.store()
            .delete_configuration(&principal.tenant, &request.configuration_id)
            .await?;
        Ok(Response::new(pb::DeleteConfigurationResponse {
            configuration_id: request.configuration_id,
        }))
    }
}
