//! KV: Range, Put, DeleteRange, Txn, Compact (etcd `v3rpc/key.go` + `etcdserver/v3_server.go`).

use std::sync::Arc;

use dapr_proto::etcd::etcdserverpb::{
    self as pb, CompactionRequest, CompactionResponse, kv_server::Kv,
};
use prost::Message;
use tonic::{Request, Response as GrpcResponse, Status};

use super::{
    Shared, convert,
    error::{no_result, node_status, store_status, unexpected},
};
use crate::mvcc::{Command, CompactRequest, Response, validate_txn};

pub(crate) struct KvService {
    shared: Arc<Shared>,
}

impl KvService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Proposes `cmd` and returns the engine's response.
    async fn write(&self, cmd: Command) -> Result<Response, Status> {
        let reply = self.shared.node.write(cmd).await.map_err(node_status)?;
        reply
            .result
            .ok_or_else(no_result)?
            .map_err(|e| store_status(&e))
    }

    fn max_txn_ops(&self) -> usize {
        self.shared.node.machine().read().config().max_txn_ops
    }
}

/// etcd's `isTxnSerializable`: every op of both branches is a serializable range.
fn txn_serializable(t: &pb::TxnRequest) -> bool {
    use pb::request_op::Request;
    t.success
        .iter()
        .chain(&t.failure)
        .all(|op| matches!(&op.request, Some(Request::RequestRange(r)) if r.serializable))
}

#[tonic::async_trait]
impl Kv for KvService {
    #[tracing::instrument(level = "trace", skip_all)]
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<GrpcResponse<pb::RangeResponse>, Status> {
        let r = request.into_inner();
        convert::check_range(&r)?;
        if !r.serializable {
            self.shared.node.linearize().await.map_err(node_status)?;
        }
        let response = self
            .shared
            .node
            .machine()
            .read()
            .range(&convert::range_request(r))
            .map_err(|e| store_status(&e))?;
        let header = self.shared.header(response.revision);
        Ok(GrpcResponse::new(convert::range_response(
            response,
            Some(header),
        )))
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<GrpcResponse<pb::PutResponse>, Status> {
        let r = request.into_inner();
        convert::check_put(&r)?;
        self.shared.check_size(r.encoded_len())?;
        match self.write(Command::Put(convert::put_request(r))).await? {
            Response::Put(p) => {
                let header = self.shared.header(p.revision);
                Ok(GrpcResponse::new(convert::put_response(p, Some(header))))
            }
            _ => Err(unexpected()),
        }
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<GrpcResponse<pb::DeleteRangeResponse>, Status> {
        let r = request.into_inner();
        convert::check_delete(&r)?;
        self.shared.check_size(r.encoded_len())?;
        match self
            .write(Command::DeleteRange(convert::delete_request(r)))
            .await?
        {
            Response::DeleteRange(d) => {
                let header = self.shared.header(d.revision);
                Ok(GrpcResponse::new(convert::delete_response(d, Some(header))))
            }
            _ => Err(unexpected()),
        }
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<GrpcResponse<pb::TxnResponse>, Status> {
        let r = request.into_inner();
        let max_ops = self.max_txn_ops();
        convert::check_txn(&r, i64::try_from(max_ops).unwrap_or(i64::MAX))?;
        let serializable = txn_serializable(&r);
        let encoded_len = r.encoded_len();
        let txn = convert::txn_request(r)?;
        // checkIntervals (keys written twice), with the rest of the checks the engine repeats.
        validate_txn(&txn, max_ops).map_err(|e| store_status(&e))?;
        let response = if txn.is_read_only() {
            if !serializable {
                self.shared.node.linearize().await.map_err(node_status)?;
            }
            self.shared
                .node
                .machine()
                .read()
                .read_txn(&txn)
                .map_err(|e| store_status(&e))?
        } else {
            self.shared.check_size(encoded_len)?;
            match self.write(Command::Txn(txn)).await? {
                Response::Txn(t) => t,
                _ => return Err(unexpected()),
            }
        };
        let header = self.shared.header(response.revision);
        Ok(GrpcResponse::new(convert::txn_response(
            response,
            Some(header),
        )))
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<GrpcResponse<CompactionResponse>, Status> {
        let r = request.into_inner();
        // Ours compacts completely while applying, so `physical` needs no extra wait.
        let cmd = Command::Compact(CompactRequest {
            revision: r.revision,
            physical: r.physical,
        });
        match self.write(cmd).await? {
            Response::Compact(c) => Ok(GrpcResponse::new(CompactionResponse {
                header: Some(self.shared.header(c.revision)),
            })),
            _ => Err(unexpected()),
        }
    }
}
