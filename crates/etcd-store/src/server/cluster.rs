//! Cluster.MemberList (the membership is fixed by the initial cluster; changes are not served).

use std::sync::Arc;

use dapr_proto::etcd::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, cluster_server::Cluster,
};
use tonic::{Request, Response as GrpcResponse, Status};

use super::{Shared, error::node_status};

pub(crate) struct ClusterService {
    shared: Arc<Shared>,
}

impl ClusterService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!(
        "etcdserver: Cluster.{method} is not supported: members come from the initial cluster"
    ))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _request: Request<MemberAddRequest>,
    ) -> Result<GrpcResponse<MemberAddResponse>, Status> {
        Err(unimplemented("MemberAdd"))
    }

    async fn member_remove(
        &self,
        _request: Request<MemberRemoveRequest>,
    ) -> Result<GrpcResponse<MemberRemoveResponse>, Status> {
        Err(unimplemented("MemberRemove"))
    }

    async fn member_update(
        &self,
        _request: Request<MemberUpdateRequest>,
    ) -> Result<GrpcResponse<MemberUpdateResponse>, Status> {
        Err(unimplemented("MemberUpdate"))
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn member_list(
        &self,
        request: Request<MemberListRequest>,
    ) -> Result<GrpcResponse<MemberListResponse>, Status> {
        let node = &self.shared.node;
        if request.into_inner().linearizable {
            node.linearize().await.map_err(node_status)?;
        }
        let own = node.id();
        let members = node
            .members()
            .iter()
            .map(|m| Member {
                id: m.id,
                name: m.name.clone(),
                peer_ur_ls: vec![m.peer_url.clone()],
                // Only our own client URLs are known here (etcd learns the others' through Raft).
                client_ur_ls: if m.id == own {
                    self.shared.client_urls.clone()
                } else {
                    Vec::new()
                },
                is_learner: false,
            })
            .collect();
        Ok(GrpcResponse::new(MemberListResponse {
            header: Some(self.shared.header(0)),
            members,
        }))
    }

    async fn member_promote(
        &self,
        _request: Request<MemberPromoteRequest>,
    ) -> Result<GrpcResponse<MemberPromoteResponse>, Status> {
        Err(unimplemented("MemberPromote"))
    }
}
