//! `HostService`: the registered hosts (admin and service-operator roles).
//!
//! Hosts are shared by every tenant. A tenant admin sees every host (its id, zone, address,
//! capacity and health: what placement works with) but only its own tenant's nodes on them;
//! a service operator ([`Role::ServiceOperator`](crate::auth::Role::ServiceOperator)) sees
//! every tenant's nodes.

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::host_service_server::HostService;
use tonic::{Request, Response, Status};

use super::{Api, convert, page_request};
use crate::auth::Action;
use crate::store::Store;

#[tonic::async_trait]
impl<S: Store> HostService for Api<S> {
    async fn list_hosts(
        &self,
        request: Request<pb::ListHostsRequest>,
    ) -> Result<Response<pb::ListHostsResponse>, Status> {
        let principal = self.authorize(&request, Action::ReadHosts)?;
        let request = request.into_inner();
        let page = page_request(request.page_size, request.page_token);
        let page = if principal.role.allows(Action::ReadFleet) {
            self.store().list_hosts(page).await?
        } else {
            self.store()
                .list_hosts_for_tenant(&principal.tenant, page)
                .await?
        };
        Ok(Response::new(pb::ListHostsResponse {
            hosts: page.items.iter().map(convert::host_to_proto).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}
