//! Maintenance (status, defragment, alarms), Cluster.MemberList and the Auth answers of a server
//! with auth off.

use dapr_proto::etcd::etcdserverpb::{
    AlarmRequest, AlarmType, AuthStatusRequest, AuthenticateRequest, DefragmentRequest,
    MemberListRequest, alarm_request::AlarmAction,
};
use tonic::Code;

use crate::support::{assert_status, connect, msg};

#[tokio::test]
async fn status_reports_the_revision_sizes_and_the_single_leader() {
    let Some(mut etcd) = connect("status").await else {
        return;
    };
    let put = etcd.put("k", "v").await.header.expect("put header");
    let written = put.revision;
    let status = etcd.status().await;
    let header = status.header.as_ref().expect("header");
    // Every service fills the header from the same member.
    assert_eq!(
        (put.cluster_id, put.member_id, put.raft_term),
        (header.cluster_id, header.member_id, header.raft_term)
    );
    assert!(header.revision >= written, "{status:?}");
    assert!(
        header.cluster_id != 0 && header.member_id != 0,
        "{status:?}"
    );
    assert!(
        status.version.starts_with("3.5."),
        "version {:?}",
        status.version
    );
    assert!(
        status.db_size > 0 && status.db_size >= status.db_size_in_use,
        "{status:?}"
    );
    assert!(status.db_size_in_use > 0, "{status:?}");
    // One member: it leads, and is no learner.
    assert_eq!(status.leader, header.member_id);
    assert!(
        status.raft_term >= 1 && status.raft_index >= 1,
        "{status:?}"
    );
    assert!(status.raft_applied_index >= 1, "{status:?}");
    assert!(!status.is_learner);
    assert!(status.errors.is_empty(), "{status:?}");
}

#[tokio::test]
async fn defragment_succeeds_and_keeps_the_data() {
    let Some(mut etcd) = connect("defragment").await else {
        return;
    };
    etcd.put("k", "v").await;
    let response = etcd
        .maintenance
        .defragment(DefragmentRequest {})
        .await
        .expect("defragment")
        .into_inner();
    // etcd v3.5 answers Defragment without a header (the only call that does).
    assert_eq!(response.header, None);
    assert_eq!(etcd.get("k").await.expect("k survives").value, b"v");
    let status = etcd.status().await;
    assert!(status.db_size >= status.db_size_in_use, "{status:?}");
}

#[tokio::test]
async fn no_alarm_is_raised_on_a_healthy_server() {
    let Some(mut etcd) = connect("alarm_list").await else {
        return;
    };
    // What clientv3's AlarmList sends.
    let request = AlarmRequest {
        action: AlarmAction::Get.into(),
        member_id: 0,
        alarm: AlarmType::None.into(),
    };
    let response = etcd
        .maintenance
        .alarm(request)
        .await
        .expect("alarm list")
        .into_inner();
    assert!(response.alarms.is_empty(), "{response:?}");
    assert!(response.header.is_some());
}

#[tokio::test]
async fn member_list_has_the_one_member_serving_this_endpoint() {
    let Some(mut etcd) = connect("member_list").await else {
        return;
    };
    let member_id = etcd.status().await.header.expect("header").member_id;
    let response = etcd
        .cluster
        .member_list(MemberListRequest { linearizable: true })
        .await
        .expect("member list")
        .into_inner();
    assert_eq!(response.members.len(), 1, "{response:?}");
    let member = &response.members[0];
    assert_eq!(member.id, member_id);
    assert!(!member.name.is_empty() && !member.is_learner, "{member:?}");
    assert!(
        member.client_ur_ls.contains(&etcd.endpoint),
        "{member:?} serves {}",
        etcd.endpoint
    );
    assert!(!member.peer_ur_ls.is_empty(), "{member:?}");
    assert_eq!(response.header.expect("header").member_id, member_id);
}

#[tokio::test]
async fn auth_is_off() {
    let Some(mut etcd) = connect("auth").await else {
        return;
    };
    let status = etcd
        .auth
        .auth_status(AuthStatusRequest {})
        .await
        .expect("auth status")
        .into_inner();
    assert!(!status.enabled, "{status:?}");
    let result = etcd
        .auth
        .authenticate(AuthenticateRequest {
            name: "root".into(),
            password: "secret".into(),
        })
        .await
        .map(tonic::Response::into_inner);
    assert_status(result, Code::FailedPrecondition, msg::AUTH_NOT_ENABLED);
}
