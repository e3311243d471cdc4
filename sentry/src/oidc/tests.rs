use super::*;

fn discovery(
    issuer: Option<&str>,
    jwks_uri: Option<&str>,
    tls: bool,
    allowed: &[&str],
) -> Discovery {
    Discovery {
        issuer: issuer.map(str::to_owned),
        jwks_uri: jwks_uri.map(str::to_owned),
        jwks_path: "/jwks.json".into(),
        signing_algorithm: "RS256".into(),
        tls,
        allowed_hosts: allowed.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[test]
fn routes_join_the_prefix_without_a_trailing_slash() {
    assert_eq!(
        routes(None),
        (
            "/.well-known/openid-configuration".into(),
            "/jwks.json".into()
        )
    );
    assert_eq!(routes(Some("/")).1, "/jwks.json");
    assert_eq!(routes(Some("/auth")).1, "/auth/jwks.json");
    assert_eq!(
        routes(Some("/auth/")).0,
        "/auth/.well-known/openid-configuration"
    );
}

#[test]
fn the_host_allow_list_checks_the_forwarded_host_and_host_port() {
    let list = |h: &[&str]| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert!(host_allowed(&[], "anything", None));
    assert!(host_allowed(&list(&["*"]), "evil", Some("evil2")));
    let allowed = list(&["localhost", "example.com"]);
    assert!(host_allowed(&allowed, "localhost:9080", None));
    assert!(host_allowed(&allowed, "example.com", None));
    assert!(!host_allowed(&allowed, "evil.com", None));
    assert!(!host_allowed(&allowed, "localhost:9080", Some("evil.com")));
    assert!(host_allowed(&allowed, "evil.com", Some("example.com:443")));
    assert!(host_allowed(&list(&["::1"]), "[::1]:80", None));
}

#[test]
fn the_issuer_is_derived_from_host_and_ignores_forwarded_without_a_concrete_list() {
    let d = discovery(None, None, false, &[]);
    let doc = d
        .document("localhost:9080", Some("attacker.example.com"))
        .unwrap();
    assert_eq!(doc.issuer, "http://localhost:9080");
    assert_eq!(doc.jwks_uri, "http://localhost:9080/jwks.json");

    let d = discovery(None, None, true, &["*"]);
    let doc = d
        .document("localhost:9080", Some("attacker.example.com"))
        .unwrap();
    assert_eq!(doc.issuer, "https://localhost:9080");

    let d = discovery(None, None, false, &["example.com"]);
    let doc = d.document("localhost:9080", Some("example.com")).unwrap();
    assert_eq!(doc.issuer, "http://example.com");
}

#[test]
fn a_configured_issuer_and_jwks_uri_win() {
    let mut d = discovery(Some("https://localhost:1/auth"), None, true, &[]);
    d.jwks_path = "/auth/jwks.json".into();
    let doc = d.document("other:2", None).unwrap();
    assert_eq!(doc.issuer, "https://localhost:1/auth");
    assert_eq!(doc.jwks_uri, "https://localhost:1/auth/jwks.json");

    let d = discovery(
        Some("dapr.io"),
        Some("https://external.example.com/jwks"),
        true,
        &[],
    );
    let doc = d.document("h", None).unwrap();
    assert_eq!(doc.jwks_uri, "https://external.example.com/jwks");

    let d = discovery(Some("dapr.io"), None, true, &[]);
    assert_eq!(d.document("h", None).unwrap().jwks_uri, "/jwks.json");

    let d = discovery(Some(""), None, false, &[]);
    assert_eq!(d.document("h:1", None).unwrap().issuer, "http://h:1");
}

#[test]
fn the_document_serialises_in_upstreams_member_order() {
    let doc = discovery(None, None, false, &[])
        .document("h", None)
        .unwrap();
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        r#"{"issuer":"http://h","jwks_uri":"http://h/jwks.json","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"],"scopes_supported":["openid"],"claims_supported":["sub","iss","aud","exp","iat","nbf","use"]}"#
    );
}

#[test]
fn an_unusable_host_is_rejected() {
    let d = discovery(None, None, false, &[]);
    assert_eq!(d.document("bad host", None), Err(InvalidHost));
}

mod over_http {
    use axum::body::{Body, to_bytes};
    use http::{Request, StatusCode, header};
    use tower::ServiceExt as _;

    use super::super::router;
    use super::discovery;

    async fn call(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        allowed: &[&str],
    ) -> (StatusCode, String, String) {
        let (disc, jwks) = super::routes(Some("/auth"));
        let app = router(
            &disc,
            &jwks,
            super::Discovery {
                jwks_path: jwks.clone(),
                ..discovery(None, None, false, allowed)
            },
            r#"{"keys":[{"kty":"OKP"}]}"#.into(),
        );
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_jwks_is_served_as_exactly_application_json() {
        let (status, ct, body) = call("GET", "/auth/jwks.json", &[("host", "h")], &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "application/json");
        assert_eq!(body, r#"{"keys":[{"kty":"OKP"}]}"#);
    }

    #[tokio::test]
    async fn discovery_ends_with_a_newline_and_uses_the_host() {
        let (status, ct, body) = call(
            "GET",
            "/auth/.well-known/openid-configuration",
            &[("host", "localhost:9")],
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "application/json");
        assert!(body.ends_with("}\n"));
        assert!(
            body.contains(r#""jwks_uri":"http://localhost:9/auth/jwks.json""#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn other_methods_get_405_and_other_paths_404() {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let (status, ct, body) = call(method, "/auth/jwks.json", &[("host", "h")], &[]).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(ct, "text/plain; charset=utf-8");
            assert_eq!(body, "Method not allowed\n");
        }
        for path in [
            "/",
            "/jwks.json",
            "/.well-known/openid-configuration",
            "/auth/x",
        ] {
            let (status, ..) = call("GET", path, &[("host", "h")], &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[tokio::test]
    async fn hosts_outside_the_allow_list_get_403() {
        let (status, _, body) = call(
            "GET",
            "/auth/jwks.json",
            &[("host", "evil.com")],
            &["localhost"],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body, "Forbidden: unauthorized domain\n");
        let (status, ..) = call(
            "GET",
            "/auth/jwks.json",
            &[("host", "localhost:1"), ("x-forwarded-host", "evil.com")],
            &["localhost"],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
