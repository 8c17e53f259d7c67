//! `OperationService`: the tenant's operations.

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::operation_service_server::OperationService;
use tonic::{Request, Response, Status};

use super::{Api, convert, page_request, require_id};
use crate::auth::Action;
use crate::store::Store;

#[tonic::async_trait]
impl<S: Store> OperationService for Api<S> {
    async fn get_operation(
        &self,
        request: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::Operation>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        require_id("operation_id", &request.operation_id)?;
        let operation = self
            .store()
            .get_operation(&principal.tenant, &request.operation_id)
            .await?;
        Ok(Response::new(convert::operation_to_proto(&operation)))
    }

    async fn list_operations(
        &self,
        request: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        let principal = self.authorize(&request, Action::Read)?;
        let request = request.into_inner();
        require_id("cluster_id", &request.cluster_id)?;
        let page = self
            .store()
            .list_operations(
                &principal.tenant,
                &request.cluster_id,
                page_request(request.page_size, request.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListOperationsResponse {
            operations: page.items.iter().map(convert::operation_to_proto).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}
