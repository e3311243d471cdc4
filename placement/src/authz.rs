//! Per-message authorization of host reports (spec §5.3), applied to every message of a stream.

use dapr_proto::placement::v1::{Host, HostOperation};
use tonic::Status;

/// The caller's identity from its SPIFFE ID: `spiffe://<td>/ns/<namespace>/<app-id>[/...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub namespace: String,
    pub app_id: String,
}

impl Caller {
    /// Parses a SPIFFE ID path (`/ns/<ns>/<app>`, extra segments allowed). `None` when it does
    /// not name a namespace and an app.
    pub fn from_spiffe_path(path: &str) -> Option<Self> {
        let (namespace, app_id) = dapr_security::workload_of_path(path)?;
        Some(Self {
            namespace: namespace.to_owned(),
            app_id: app_id.to_owned(),
        })
    }
}

/// Who is on the other end of a stream, as far as authorization cares.
#[derive(Clone, Debug)]
pub enum Peer {
    /// Plaintext server: anybody may report anything (except reserved actor types).
    Anonymous,
    /// mTLS server: the client's SPIFFE ID, if it named a namespace and an app.
    Mtls(Option<Caller>),
}

/// Checks one message of a stream.
pub fn authorize(peer: &Peer, host: &Host) -> Result<(), Status> {
    let caller = match peer {
        Peer::Anonymous => None,
        Peer::Mtls(Some(caller)) => Some(caller),
        Peer::Mtls(None) => {
            return Err(Status::unauthenticated(
                "failed to get client ID from context",
            ));
        }
    };
    if host.operation == HostOperation::Unknown as i32 && host.version.is_some() {
        return Err(Status::invalid_argument(
            "both operation and version must be set or both must be unset",
        ));
    }
    if host.id.is_empty() || host.namespace.is_empty() {
        return Err(Status::invalid_argument(
            "host ID and namespace must be provided",
        ));
    }
    if let Some(caller) = caller {
        if host.id != caller.app_id {
            return Err(Status::permission_denied(format!(
                "provided app ID {} doesn't match the one in the SPIFFE ID ({})",
                host.id, caller.app_id
            )));
        }
        if host.namespace != caller.namespace {
            return Err(Status::permission_denied(format!(
                "provided client namespace {} doesn't match the one in the SPIFFE ID ({})",
                host.namespace, caller.namespace
            )));
        }
    }
    if let Some(entity) = host
        .entities
        .iter()
        .find(|e| !reserved_type_allowed(e, &host.namespace, &host.id))
    {
        return Err(Status::permission_denied(format!(
            "entity {entity} is not allowed for app ID {} in namespace {}",
            host.id, host.namespace
        )));
    }
    Ok(())
}

/// `dapr.internal.<ns>.<app>...` actor types belong to that app only.
fn reserved_type_allowed(entity: &str, namespace: &str, app_id: &str) -> bool {
    let parts: Vec<&str> = entity.split('.').collect();
    if parts.len() < 2 || parts[0] != "dapr" || parts[1] != "internal" {
        return true;
    }
    parts.len() >= 4 && parts[2] == namespace && parts[3] == app_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn host(id: &str, ns: &str, entities: &[&str]) -> Host {
        Host {
            id: id.into(),
            namespace: ns.into(),
            entities: entities.iter().map(|s| (*s).to_owned()).collect(),
            ..Host::default()
        }
    }

    fn mtls(ns: &str, app: &str) -> Peer {
        Peer::Mtls(Some(Caller {
            namespace: ns.into(),
            app_id: app.into(),
        }))
    }

    #[test]
    fn spiffe_paths_must_name_a_namespace_and_an_app() {
        assert_eq!(
            Caller::from_spiffe_path("/ns/default/app-1/extra"),
            Some(Caller {
                namespace: "default".into(),
                app_id: "app-1".into()
            })
        );
        for bad in [
            "/ns/default",
            "/ns//app",
            "/ns/default/",
            "/foo/default/app",
            "ns/a/b",
            "",
        ] {
            assert_eq!(Caller::from_spiffe_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_mtls_stream_without_a_usable_id_is_unauthenticated() {
        let err = authorize(&Peer::Mtls(None), &host("a", "default", &[])).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(err.message(), "failed to get client ID from context");
    }

    #[test]
    fn a_version_without_an_operation_is_invalid() {
        let mut h = host("a", "default", &[]);
        h.version = Some(1);
        let err = authorize(&Peer::Anonymous, &h).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        h.operation = HostOperation::Lock as i32;
        assert!(authorize(&Peer::Anonymous, &h).is_ok());
        // An operation without a version is what daprd's REPORT looks like.
        let mut report = host("a", "default", &[]);
        report.operation = HostOperation::Report as i32;
        assert!(authorize(&Peer::Anonymous, &report).is_ok());
    }

    #[test]
    fn id_and_namespace_are_required() {
        for h in [host("", "default", &[]), host("a", "", &[])] {
            let err = authorize(&Peer::Anonymous, &h).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
            assert_eq!(err.message(), "host ID and namespace must be provided");
        }
    }

    #[test]
    fn under_mtls_the_host_must_match_the_spiffe_id() {
        let peer = mtls("default", "app-1");
        assert!(authorize(&peer, &host("app-1", "default", &[])).is_ok());
        let err = authorize(&peer, &host("app-2", "default", &[])).unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert_eq!(
            err.message(),
            "provided app ID app-2 doesn't match the one in the SPIFFE ID (app-1)"
        );
        let err = authorize(&peer, &host("app-1", "foo", &[])).unwrap_err();
        assert_eq!(
            err.message(),
            "provided client namespace foo doesn't match the one in the SPIFFE ID (default)"
        );
        // Without mTLS anything goes.
        assert!(authorize(&Peer::Anonymous, &host("app-2", "foo", &[])).is_ok());
    }

    #[test]
    fn reserved_actor_types_belong_to_their_app_only() {
        for ok in [
            "dapr.internal.default.app-1",
            "dapr.internal.default.app-1.foo.bar",
            "mytype",
            "dapr",
            "dapr.foo",
        ] {
            assert!(
                authorize(&Peer::Anonymous, &host("app-1", "default", &[ok])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "dapr.internal",
            "dapr.internal.",
            "dapr.internal.default.",
            "dapr.internal.foo.bar",
            "dapr.internal.default.app-2",
        ] {
            let err =
                authorize(&Peer::Anonymous, &host("app-1", "default", &["ok", bad])).unwrap_err();
            assert_eq!(err.code(), Code::PermissionDenied, "{bad}");
            assert_eq!(
                err.message(),
                format!("entity {bad} is not allowed for app ID app-1 in namespace default")
            );
        }
    }
}
