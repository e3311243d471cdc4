//! Lease: grant, time-to-live, keep-alive, revoke (deleting attached keys), expiry and listing.

use std::time::Instant;

use dapr_proto::etcd::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseLeasesRequest,
    LeaseRevokeRequest, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, PutRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

use crate::support::{Etcd, PATIENCE, assert_status, connect, header_revision, msg};

/// etcd's `MaxLeaseTTL`: 9,000,000,000 seconds.
const MAX_LEASE_TTL: i64 = 9_000_000_000;

async fn grant(etcd: &mut Etcd, ttl: i64, id: i64) -> Result<LeaseGrantResponse, Status> {
    etcd.lease
        .lease_grant(LeaseGrantRequest { ttl, id })
        .await
        .map(tonic::Response::into_inner)
}

async fn time_to_live(etcd: &mut Etcd, id: i64, keys: bool) -> LeaseTimeToLiveResponse {
    etcd.lease
        .lease_time_to_live(LeaseTimeToLiveRequest { id, keys })
        .await
        .expect("lease time-to-live")
        .into_inner()
}

async fn revoke(etcd: &mut Etcd, id: i64) -> Result<(), Status> {
    etcd.lease
        .lease_revoke(LeaseRevokeRequest { id })
        .await
        .map(drop)
}

async fn put_with_lease(etcd: &mut Etcd, name: &str, lease: i64) -> Result<i64, Status> {
    let request = PutRequest {
        key: etcd.key(name),
        value: b"v".to_vec(),
        lease,
        ..Default::default()
    };
    etcd.put_req(request)
        .await
        .map(|r| header_revision(r.header.as_ref()))
}

#[tokio::test]
async fn a_granted_lease_reports_its_ttl_and_keys() {
    let Some(mut etcd) = connect("lease_grant").await else {
        return;
    };
    let granted = grant(&mut etcd, 60, 0).await.expect("grant");
    assert!(granted.id > 0, "{granted:?}");
    assert_eq!((granted.ttl, granted.error.as_str()), (60, ""));

    put_with_lease(&mut etcd, "b", granted.id)
        .await
        .expect("put b");
    put_with_lease(&mut etcd, "a", granted.id)
        .await
        .expect("put a");
    assert_eq!(etcd.get("a").await.expect("a").lease, granted.id);

    let ttl = time_to_live(&mut etcd, granted.id, true).await;
    assert_eq!((ttl.id, ttl.granted_ttl), (granted.id, 60));
    assert!(ttl.ttl > 0 && ttl.ttl <= 60, "{ttl:?}");
    let mut keys: Vec<_> = ttl.keys.iter().map(|k| etcd.name(k).to_owned()).collect();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);

    // Without `keys` the keys are left out.
    assert!(
        time_to_live(&mut etcd, granted.id, false)
            .await
            .keys
            .is_empty()
    );

    // Moving a key to no lease detaches it.
    put_with_lease(&mut etcd, "a", 0)
        .await
        .expect("put a without lease");
    let ttl = time_to_live(&mut etcd, granted.id, true).await;
    assert_eq!(ttl.keys.len(), 1);
    revoke(&mut etcd, granted.id).await.expect("revoke");
}

#[tokio::test]
async fn a_lease_id_can_be_chosen_but_not_twice() {
    let Some(mut etcd) = connect("lease_id").await else {
        return;
    };
    // Random enough not to collide with a server-chosen id or another run.
    let id = i64::from(std::process::id()) << 20 | 0x5e_a5e;
    let granted = grant(&mut etcd, 60, id).await.expect("grant with id");
    assert_eq!(granted.id, id);
    assert_status(
        grant(&mut etcd, 60, id).await,
        Code::FailedPrecondition,
        msg::LEASE_EXISTS,
    );
    revoke(&mut etcd, id).await.expect("revoke");
}

#[tokio::test]
async fn a_ttl_below_the_minimum_is_raised_and_above_the_maximum_rejected() {
    let Some(mut etcd) = connect("lease_ttl_bounds").await else {
        return;
    };
    // The minimum is ceil(1.5 × election timeout) = 2 s at etcd's default 1 s election timeout.
    let granted = grant(&mut etcd, 1, 0).await.expect("grant ttl 1");
    assert_eq!(granted.ttl, 2);
    revoke(&mut etcd, granted.id).await.expect("revoke");
    let granted = grant(&mut etcd, 0, 0).await.expect("grant ttl 0");
    assert_eq!(granted.ttl, 2);
    revoke(&mut etcd, granted.id).await.expect("revoke");

    let granted = grant(&mut etcd, MAX_LEASE_TTL, 0)
        .await
        .expect("grant max ttl");
    assert_eq!(granted.ttl, MAX_LEASE_TTL);
    revoke(&mut etcd, granted.id).await.expect("revoke");
    assert_status(
        grant(&mut etcd, MAX_LEASE_TTL + 1, 0).await,
        Code::OutOfRange,
        msg::LEASE_TTL_TOO_LARGE,
    );
}

#[tokio::test]
async fn keep_alive_renews_and_answers_zero_for_a_gone_lease() {
    let Some(mut etcd) = connect("lease_keepalive").await else {
        return;
    };
    let granted = grant(&mut etcd, 30, 0).await.expect("grant");
    let (requests, rx) = mpsc::channel(4);
    requests
        .send(LeaseKeepAliveRequest { id: granted.id })
        .await
        .expect("queue");
    let mut responses = etcd
        .lease
        .lease_keep_alive(ReceiverStream::new(rx))
        .await
        .expect("keep-alive stream")
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(PATIENCE, responses.message())
            .await
            .expect("a keep-alive response in time")
            .expect("keep-alive stream error")
            .expect("keep-alive stream open")
    };
    let renewed = next().await;
    assert_eq!((renewed.id, renewed.ttl), (granted.id, 30));
    assert!(header_revision(renewed.header.as_ref()) > 0);

    revoke(&mut etcd, granted.id).await.expect("revoke");
    requests
        .send(LeaseKeepAliveRequest { id: granted.id })
        .await
        .expect("send");
    let gone = next().await;
    assert_eq!((gone.id, gone.ttl), (granted.id, 0));
}

#[tokio::test]
async fn revoking_a_lease_deletes_its_keys() {
    let Some(mut etcd) = connect("lease_revoke").await else {
        return;
    };
    let granted = grant(&mut etcd, 60, 0).await.expect("grant");
    for name in ["a", "b"] {
        put_with_lease(&mut etcd, name, granted.id)
            .await
            .expect("put");
    }
    etcd.put("c", "no lease").await;
    let leases = etcd
        .lease
        .lease_leases(LeaseLeasesRequest {})
        .await
        .expect("leases")
        .into_inner();
    assert!(
        leases.leases.iter().any(|l| l.id == granted.id),
        "{leases:?}"
    );

    revoke(&mut etcd, granted.id).await.expect("revoke");
    assert_eq!(etcd.all_names().await, ["c"]);
    let ttl = time_to_live(&mut etcd, granted.id, true).await;
    assert_eq!(
        (ttl.id, ttl.ttl, ttl.granted_ttl, ttl.keys.len()),
        (granted.id, -1, 0, 0)
    );
    let leases = etcd
        .lease
        .lease_leases(LeaseLeasesRequest {})
        .await
        .expect("leases")
        .into_inner();
    assert!(leases.leases.iter().all(|l| l.id != granted.id));

    // A second revoke, or one of a lease that never existed, is NotFound.
    assert_status(
        revoke(&mut etcd, granted.id).await,
        Code::NotFound,
        msg::LEASE_NOT_FOUND,
    );
}

#[tokio::test]
async fn a_put_with_an_unknown_lease_is_rejected() {
    let Some(mut etcd) = connect("lease_unknown").await else {
        return;
    };
    let unknown = 0x7fff_0000_dead_beef;
    assert_status(
        put_with_lease(&mut etcd, "k", unknown).await,
        Code::NotFound,
        msg::LEASE_NOT_FOUND,
    );
    assert!(etcd.get("k").await.is_none());
    assert_status(
        revoke(&mut etcd, unknown).await,
        Code::NotFound,
        msg::LEASE_NOT_FOUND,
    );
    let ttl = time_to_live(&mut etcd, unknown, false).await;
    assert_eq!(ttl.ttl, -1);
}

#[tokio::test]
async fn an_expired_lease_deletes_its_keys() {
    let Some(mut etcd) = connect("lease_expiry").await else {
        return;
    };
    let granted = grant(&mut etcd, 2, 0).await.expect("grant");
    let put = put_with_lease(&mut etcd, "k", granted.id)
        .await
        .expect("put");
    let start = Instant::now();
    while etcd.get("k").await.is_some() {
        assert!(
            start.elapsed() < PATIENCE,
            "key outlived its 2 s lease by {:?}",
            start.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Not before the TTL ran out (a little slack for the put's own latency).
    assert!(
        start.elapsed().as_millis() >= 1500,
        "expired after only {:?}",
        start.elapsed()
    );
    assert!(
        etcd.revision().await > put,
        "the expiry deleted the key in a new revision"
    );
    assert_eq!(time_to_live(&mut etcd, granted.id, false).await.ttl, -1);
}
