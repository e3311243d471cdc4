//! Control-plane service addresses given as `<name>:<port>` (upstream `pkg/injector/patcher/services.go`).

use std::fmt;

/// A control-plane Kubernetes Service: name and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// A Go `int` upstream, only checked to be positive.
    pub port: i64,
}

/// Why a `<name>:<port>` string is not a service address (upstream's texts).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServiceError {
    #[error("service is not in the correct format '<name>:<port>': {0}")]
    Format(String),
    #[error("service is not in the correct format '<name>:<port>': port is invalid")]
    Port,
}

impl Service {
    /// The placement service injected sidecars use when no actors service is configured.
    pub fn placement() -> Self {
        Self {
            name: "dapr-placement-server".to_owned(),
            port: 50005,
        }
    }

    /// Parses `<name>:<port>`, splitting at the first `:`.
    pub fn parse(value: &str) -> Result<Self, ServiceError> {
        let Some((name, port)) = value.split_once(':') else {
            return Err(ServiceError::Format(value.to_owned()));
        };
        if name.is_empty() || port.is_empty() {
            return Err(ServiceError::Format(value.to_owned()));
        }
        match port.parse::<i64>() {
            Ok(port) if port > 0 => Ok(Self {
                name: name.to_owned(),
                port,
            }),
            _ => Err(ServiceError::Port),
        }
    }

    /// The in-cluster address `<name>.<namespace>.svc.<cluster domain>:<port>`.
    pub fn address(&self, namespace: &str, cluster_domain: &str) -> String {
        format!(
            "{}.{namespace}.svc.{cluster_domain}:{}",
            self.name, self.port
        )
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_port_parse() {
        assert_eq!(
            Service::parse("dapr-placement-server:50005"),
            Ok(Service::placement())
        );
        assert_eq!(Service::parse("svc:+80").unwrap().port, 80);
    }

    #[test]
    fn malformed_addresses_are_rejected_with_upstreams_texts() {
        for bad in ["invalid", "name:", ":80", ""] {
            assert_eq!(
                Service::parse(bad).unwrap_err().to_string(),
                format!("service is not in the correct format '<name>:<port>': {bad}")
            );
        }
        for bad in ["svc:0", "svc:-1", "svc:http", "svc:80:81"] {
            assert_eq!(Service::parse(bad), Err(ServiceError::Port), "{bad}");
        }
    }

    #[test]
    fn the_address_is_the_in_cluster_dns_name() {
        assert_eq!(
            Service::placement().address("dapr-system", "cluster.local"),
            "dapr-placement-server.dapr-system.svc.cluster.local:50005"
        );
    }
}
