//! `HostService`: the registered hosts, an operator's view (admin role only).
//!
//! Hosts are shared by every tenant, so any tenant's admin sees all of them; a separate
//! operator scope (outside tenants) would be the better gate once tokens have one.

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::host_service_server::HostService;
use tonic::{Request, Response, Status};

use super::{Api, convert, page_request};
use crate::store::Store;

#[tonic::async_trait]
impl<S: Store> HostService for Api<S> {
    async fn list_hosts(
        &self,
        request: Request<pb::ListHostsRequest>,
    ) -> Result<Response<pb::ListHostsResponse>, Status> {
        self.authorize_admin(&request, "list hosts")?;
        let request = request.into_inner();
        let page = self
            .store()
            .list_hosts(page_request(request.page_size, request.page_token))
            .await?;
        Ok(Response::new(pb::ListHostsResponse {
            hosts: page.items.iter().map(convert::host_to_proto).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}
