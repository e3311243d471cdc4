//! Sanity checks on the generated types: they encode as upstream's and name upstream's paths.

use dapr_proto::{FILE_DESCRIPTOR_SET, common, operator, placement, scheduler, sentry};
use prost::Message;

#[test]
fn a_sign_certificate_request_round_trips() {
    let request = sentry::v1::SignCertificateRequest {
        id: "dapr-placement".into(),
        token: "token".into(),
        trust_domain: "cluster.local".into(),
        namespace: "dapr-system".into(),
        certificate_signing_request: b"-----BEGIN CERTIFICATE REQUEST-----".to_vec(),
        token_validator: sentry::v1::sign_certificate_request::TokenValidator::Kubernetes.into(),
        jwt_audiences: vec!["aud".into()],
    };
    let bytes = request.encode_to_vec();
    assert_eq!(
        sentry::v1::SignCertificateRequest::decode(bytes.as_slice()).expect("decodes"),
        request
    );
}

#[test]
fn field_numbers_on_the_wire_are_upstreams() {
    // Tag = (field number << 3) | wire type; a string is wire type 2.
    let request = sentry::v1::SignCertificateRequest {
        namespace: "ns".into(),
        ..Default::default()
    };
    assert_eq!(request.encode_to_vec(), [4 << 3 | 2, 2, b'n', b's']);

    // proto3 `optional`: an explicit zero is still sent (field 10, varint).
    let host = placement::v1::Host {
        version: Some(0),
        ..Default::default()
    };
    assert_eq!(host.encode_to_vec(), [10 << 3, 0]);
}

#[test]
fn service_names_are_upstreams() {
    assert_eq!(
        sentry::v1::ca_server::SERVICE_NAME,
        "dapr.proto.sentry.v1.CA"
    );
    assert_eq!(
        placement::v1::placement_server::SERVICE_NAME,
        "dapr.proto.placement.v1.Placement"
    );
    assert_eq!(
        scheduler::v1::scheduler_server::SERVICE_NAME,
        "dapr.proto.scheduler.v1.Scheduler"
    );
    assert_eq!(
        operator::v1::operator_server::SERVICE_NAME,
        "dapr.proto.operator.v1.Operator"
    );
}

#[test]
fn method_paths_are_upstreams() {
    let sources = [
        include_str!("../src/gen/dapr.proto.sentry.v1.rs"),
        include_str!("../src/gen/dapr.proto.placement.v1.rs"),
        include_str!("../src/gen/dapr.proto.scheduler.v1.rs"),
        include_str!("../src/gen/dapr.proto.operator.v1.rs"),
    ]
    .concat();
    for path in [
        "/dapr.proto.sentry.v1.CA/SignCertificate",
        "/dapr.proto.placement.v1.Placement/ReportDaprStatus",
        "/dapr.proto.scheduler.v1.Scheduler/WatchJobs",
        "/dapr.proto.scheduler.v1.Scheduler/WatchHosts",
        "/dapr.proto.operator.v1.Operator/ComponentUpdate",
        "/dapr.proto.operator.v1.Operator/ListSubscriptionsV2",
    ] {
        assert!(
            sources.contains(&format!("\"{path}\"")),
            "{path} not generated"
        );
    }
}

#[test]
fn scheduler_types_use_common_failure_policy() {
    let job = scheduler::v1::Job {
        failure_policy: Some(common::v1::JobFailurePolicy {
            policy: Some(common::v1::job_failure_policy::Policy::Drop(
                common::v1::JobFailurePolicyDrop {},
            )),
        }),
        ..Default::default()
    };
    // Field 6 holding field 1 (an empty message).
    assert_eq!(job.encode_to_vec(), [6 << 3 | 2, 2, 1 << 3 | 2, 0]);
}

#[test]
fn the_descriptor_set_holds_every_file_and_its_imports() {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("decodes");
    let names: Vec<_> = set.file.iter().map(|f| f.name()).collect();
    for name in [
        "dapr/proto/common/v1/common.proto",
        "dapr/proto/internals/v1/jobs.proto",
        "dapr/proto/operator/v1/operator.proto",
        "dapr/proto/operator/v1/resource.proto",
        "dapr/proto/placement/v1/placement.proto",
        "dapr/proto/placement/v1/state.proto",
        "dapr/proto/scheduler/v1/scheduler.proto",
        "dapr/proto/sentry/v1/sentry.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/any.proto",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}
