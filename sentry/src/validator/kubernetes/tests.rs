use super::*;

fn req(id: &str, ns: &str) -> SignCertificateRequest {
    SignCertificateRequest {
        id: id.into(),
        namespace: ns.into(),
        ..Default::default()
    }
}

fn pod(annotations: Value) -> Value {
    json!({"metadata":{"namespace":"mynamespace","name":"mypod","annotations":annotations},
        "spec":{"serviceAccountName":"mysa"}})
}

#[test]
fn only_service_account_usernames_are_accepted() {
    assert_eq!(
        service_account("system:serviceaccount:ns:sa").unwrap(),
        ("ns".into(), "sa".into())
    );
    assert_eq!(
        service_account("admin").unwrap_err().to_string(),
        "provided token is not a properly structured service account token"
    );
}

#[test]
fn the_pod_name_comes_from_bare_json_or_a_jws_payload() {
    assert_eq!(
        pod_name(r#"{"kubernetes.io":{"pod":{"name":"mypod"}}}"#).unwrap(),
        "mypod"
    );
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"kubernetes.io":{"pod":{"name":"p2"}}}"#);
    assert_eq!(pod_name(&format!("h.{payload}.s")).unwrap(), "p2");
    assert_eq!(
        pod_name("{}").unwrap_err().to_string(),
        "kubernetes.io/pod/name claim is missing from Kubernetes token"
    );
}

#[test]
fn the_app_id_annotation_or_pod_name_must_match_the_request() {
    let p = pod(json!({"dapr.io/app-id":"myappid"}));
    let ok = check_pod(
        &p,
        "mynamespace",
        "mysa",
        "dapr-system",
        &req("myappid", "mynamespace"),
    );
    assert_eq!(ok.unwrap().id, "myappid");
    let err = check_pod(
        &p,
        "mynamespace",
        "mysa",
        "dapr-system",
        &req("x", "mynamespace"),
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "app-id mismatch. expected: myappid, received: x"
    );
    let legacy = check_pod(
        &p,
        "mynamespace",
        "mysa",
        "dapr-system",
        &req("mynamespace:mysa", "mynamespace"),
    );
    assert!(matches!(
        legacy,
        Err(KubeValidationError::AppIdMismatch { .. })
    ));
    let p = pod(json!({}));
    assert_eq!(
        check_pod(&p, "mynamespace", "mysa", "x", &req("mypod", "mynamespace"))
            .unwrap()
            .id,
        "mypod"
    );
}

#[test]
fn namespace_and_service_account_must_match() {
    let p = pod(json!({}));
    assert_eq!(
        check_pod(&p, "mynamespace", "mysa", "x", &req("mypod", "other"))
            .unwrap_err()
            .to_string(),
        "namespace mismatch; received namespace: other"
    );
    assert_eq!(
        check_pod(
            &p,
            "mynamespace",
            "othersa",
            "x",
            &req("mypod", "mynamespace")
        )
        .unwrap_err()
        .to_string(),
        "pod service account mismatch"
    );
}

#[test]
fn control_plane_pods_must_live_in_sentrys_namespace() {
    let p = pod(json!({"dapr.io/control-plane":"operator"}));
    let ok = check_pod(
        &p,
        "mynamespace",
        "mysa",
        "mynamespace",
        &req("dapr-operator", "mynamespace"),
    );
    assert!(ok.unwrap().control_plane);
    assert_eq!(
        check_pod(
            &p,
            "mynamespace",
            "mysa",
            "dapr-system",
            &req("dapr-operator", "mynamespace")
        )
        .unwrap_err()
        .to_string(),
        "control plane service in namespace 'mynamespace' is not allowed"
    );
    let p = pod(json!({"dapr.io/control-plane":"evil"}));
    assert_eq!(
        check_pod(
            &p,
            "mynamespace",
            "mysa",
            "mynamespace",
            &req("dapr-evil", "mynamespace")
        )
        .unwrap_err()
        .to_string(),
        "unknown control plane service 'mypod'"
    );
}

#[test]
fn the_configuration_trust_domain_defaults_to_public() {
    assert_eq!(configuration_trust_domain(None).unwrap().as_str(), "public");
    let c = json!({"spec":{"accessControl":{"trustDomain":"example.org"}}});
    assert_eq!(
        configuration_trust_domain(Some(&c)).unwrap().as_str(),
        "example.org"
    );
}
