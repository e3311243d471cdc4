//! Maintenance: Status, Alarm, Defragment (etcd `v3rpc/maintenance.go`). Hash, HashKV, Snapshot,
//! MoveLeader and Downgrade are not served.

use std::{pin::Pin, sync::Arc};

use dapr_proto::etcd::etcdserverpb::{
    self as pb, AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse,
    DowngradeRequest, DowngradeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse,
    MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest,
    StatusResponse, alarm_request::AlarmAction as PbAction, maintenance_server::Maintenance,
};
use tokio_stream::Stream;
use tonic::{Request, Response as GrpcResponse, Status};

use super::{
    ETCD_VERSION, Shared,
    error::{no_result, node_status, store_status, unexpected},
};
use crate::mvcc::{self, AlarmAction, AlarmMember, AlarmType, Command, Response};

pub(crate) struct MaintenanceService {
    shared: Arc<Shared>,
}

impl MaintenanceService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn write(&self, cmd: Command) -> Result<Response, Status> {
        let reply = self.shared.node.write(cmd).await.map_err(node_status)?;
        reply
            .result
            .ok_or_else(no_result)?
            .map_err(|e| store_status(&e))
    }
}

pub(crate) fn alarm_type(alarm: i32) -> Option<AlarmType> {
    match pb::AlarmType::try_from(alarm).ok()? {
        pb::AlarmType::None => Some(AlarmType::None),
        pb::AlarmType::Nospace => Some(AlarmType::Nospace),
        pb::AlarmType::Corrupt => Some(AlarmType::Corrupt),
    }
}

pub(crate) fn alarm_member(m: AlarmMember) -> pb::AlarmMember {
    let alarm = match m.alarm {
        AlarmType::None => pb::AlarmType::None,
        AlarmType::Nospace => pb::AlarmType::Nospace,
        AlarmType::Corrupt => pb::AlarmType::Corrupt,
    };
    pb::AlarmMember {
        member_id: m.member_id,
        alarm: alarm.into(),
    }
}

/// An alarm as Status.errors lists it: Go's compact text form of the AlarmMember message.
pub(crate) fn alarm_text(m: AlarmMember) -> String {
    let name = match m.alarm {
        AlarmType::None => "NONE",
        AlarmType::Nospace => "NOSPACE",
        AlarmType::Corrupt => "CORRUPT",
    };
    format!("memberID:{} alarm:{name} ", m.member_id)
}

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!(
        "etcdserver: Maintenance.{method} is not supported by this store"
    ))
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    #[tracing::instrument(level = "trace", skip_all)]
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<GrpcResponse<AlarmResponse>, Status> {
        let r = request.into_inner();
        let action = match PbAction::try_from(r.action) {
            Ok(PbAction::Get) => AlarmAction::Get,
            Ok(PbAction::Activate) => AlarmAction::Activate,
            Ok(PbAction::Deactivate) => AlarmAction::Deactivate,
            // etcd's applier answers an unknown action with nothing.
            Err(_) => {
                return Ok(GrpcResponse::new(AlarmResponse {
                    header: Some(self.shared.header(0)),
                    alarms: vec![],
                }));
            }
        };
        let Some(alarm) = alarm_type(r.alarm) else {
            // No alarm of a type this version does not know is ever raised.
            return Ok(GrpcResponse::new(AlarmResponse {
                header: Some(self.shared.header(0)),
                alarms: vec![],
            }));
        };
        let cmd = Command::Alarm(mvcc::AlarmRequest {
            action,
            member_id: r.member_id,
            alarm,
        });
        match self.write(cmd).await? {
            Response::Alarm(a) => Ok(GrpcResponse::new(AlarmResponse {
                header: Some(self.shared.header(a.revision)),
                alarms: a.alarms.into_iter().map(alarm_member).collect(),
            })),
            _ => Err(unexpected()),
        }
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<GrpcResponse<StatusResponse>, Status> {
        let node = &self.shared.node;
        let status = node.machine().read().status();
        let (leader, term, raft_index, applied) = node.raft_status();
        let mut errors = Vec::new();
        if leader.is_none() {
            errors.push("etcdserver: no leader".to_owned());
        }
        errors.extend(status.alarms.iter().copied().map(alarm_text));
        let mut header = self.shared.header(status.revision);
        header.raft_term = term;
        Ok(GrpcResponse::new(StatusResponse {
            header: Some(header),
            version: ETCD_VERSION.to_owned(),
            db_size: i64::try_from(status.db_size).unwrap_or(i64::MAX),
            leader: leader.unwrap_or(0),
            raft_index,
            raft_term: term,
            raft_applied_index: applied,
            errors,
            db_size_in_use: i64::try_from(status.db_size_in_use).unwrap_or(i64::MAX),
            is_learner: false,
        }))
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn defragment(
        &self,
        _request: Request<DefragmentRequest>,
    ) -> Result<GrpcResponse<DefragmentResponse>, Status> {
        match self.write(Command::Defragment).await? {
            // etcd v3.5 answers Defragment without a header.
            Response::Defragment { .. } => {
                self.shared
                    .node
                    .defragment_on_disk()
                    .await
                    .map_err(|e| Status::unknown(format!("etcdserver: defragment: {e}")))?;
                Ok(GrpcResponse::new(DefragmentResponse { header: None }))
            }
            _ => Err(unexpected()),
        }
    }

    async fn hash(
        &self,
        _request: Request<HashRequest>,
    ) -> Result<GrpcResponse<HashResponse>, Status> {
        Err(unimplemented("Hash"))
    }

    async fn hash_kv(
        &self,
        _request: Request<HashKvRequest>,
    ) -> Result<GrpcResponse<HashKvResponse>, Status> {
        Err(unimplemented("HashKV"))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<GrpcResponse<Self::SnapshotStream>, Status> {
        Err(unimplemented("Snapshot"))
    }

    async fn move_leader(
        &self,
        _request: Request<MoveLeaderRequest>,
    ) -> Result<GrpcResponse<MoveLeaderResponse>, Status> {
        Err(unimplemented("MoveLeader"))
    }

    async fn downgrade(
        &self,
        _request: Request<DowngradeRequest>,
    ) -> Result<GrpcResponse<DowngradeResponse>, Status> {
        Err(unimplemented("Downgrade"))
    }
}
