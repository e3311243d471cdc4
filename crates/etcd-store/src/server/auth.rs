//! Auth: this store has no users, so auth is always off. AuthStatus says so, Authenticate fails
//! as etcd's does with auth disabled, and the user/role administration is not served.

use std::sync::Arc;

use dapr_proto::etcd::etcdserverpb::{self as pb, auth_server::Auth};
use tonic::{Request, Response as GrpcResponse, Status};

use super::Shared;

pub(crate) struct AuthService {
    shared: Arc<Shared>,
}

impl AuthService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// `rpctypes.ErrGRPCAuthNotEnabled`.
fn auth_not_enabled() -> Status {
    Status::failed_precondition("etcdserver: authentication is not enabled")
}

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!(
        "etcdserver: Auth.{method} is not supported: this store has no auth"
    ))
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_status(
        &self,
        _request: Request<pb::AuthStatusRequest>,
    ) -> Result<GrpcResponse<pb::AuthStatusResponse>, Status> {
        Ok(GrpcResponse::new(pb::AuthStatusResponse {
            header: Some(self.shared.header(0)),
            enabled: false,
            auth_revision: 0,
        }))
    }

    async fn authenticate(
        &self,
        _request: Request<pb::AuthenticateRequest>,
    ) -> Result<GrpcResponse<pb::AuthenticateResponse>, Status> {
        Err(auth_not_enabled())
    }

    async fn auth_enable(
        &self,
        _request: Request<pb::AuthEnableRequest>,
    ) -> Result<GrpcResponse<pb::AuthEnableResponse>, Status> {
        Err(unimplemented("AuthEnable"))
    }

    async fn auth_disable(
        &self,
        _request: Request<pb::AuthDisableRequest>,
    ) -> Result<GrpcResponse<pb::AuthDisableResponse>, Status> {
        Err(unimplemented("AuthDisable"))
    }

    async fn user_add(
        &self,
        _request: Request<pb::AuthUserAddRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserAddResponse>, Status> {
        Err(unimplemented("UserAdd"))
    }

    async fn user_get(
        &self,
        _request: Request<pb::AuthUserGetRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserGetResponse>, Status> {
        Err(unimplemented("UserGet"))
    }

    async fn user_list(
        &self,
        _request: Request<pb::AuthUserListRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserListResponse>, Status> {
        Err(unimplemented("UserList"))
    }

    async fn user_delete(
        &self,
        _request: Request<pb::AuthUserDeleteRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserDeleteResponse>, Status> {
        Err(unimplemented("UserDelete"))
    }

    async fn user_change_password(
        &self,
        _request: Request<pb::AuthUserChangePasswordRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserChangePasswordResponse>, Status> {
        Err(unimplemented("UserChangePassword"))
    }

    async fn user_grant_role(
        &self,
        _request: Request<pb::AuthUserGrantRoleRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserGrantRoleResponse>, Status> {
        Err(unimplemented("UserGrantRole"))
    }

    async fn user_revoke_role(
        &self,
        _request: Request<pb::AuthUserRevokeRoleRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserRevokeRoleResponse>, Status> {
        Err(unimplemented("UserRevokeRole"))
    }

    async fn role_add(
        &self,
        _request: Request<pb::AuthRoleAddRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleAddResponse>, Status> {
        Err(unimplemented("RoleAdd"))
    }

    async fn role_get(
        &self,
        _request: Request<pb::AuthRoleGetRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleGetResponse>, Status> {
        Err(unimplemented("RoleGet"))
    }

    async fn role_list(
        &self,
        _request: Request<pb::AuthRoleListRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleListResponse>, Status> {
        Err(unimplemented("RoleList"))
    }

    async fn role_delete(
        &self,
        _request: Request<pb::AuthRoleDeleteRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleDeleteResponse>, Status> {
        Err(unimplemented("RoleDelete"))
    }

    async fn role_grant_permission(
        &self,
        _request: Request<pb::AuthRoleGrantPermissionRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleGrantPermissionResponse>, Status> {
        Err(unimplemented("RoleGrantPermission"))
    }

    async fn role_revoke_permission(
        &self,
        _request: Request<pb::AuthRoleRevokePermissionRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleRevokePermissionResponse>, Status> {
        Err(unimplemented("RoleRevokePermission"))
    }
}
