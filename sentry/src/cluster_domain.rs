//! The Kubernetes cluster domain for the scheduler's DNS SANs (spec §3.1, §7.3).
//!
//! Upstream (`utils/resolvconf.go`) asks Go's resolver for the CNAME of
//! `kubernetes.default.svc` (2 s timeout). Without a real CNAME record, Go answers with the
//! name that resolved after applying resolv.conf's search list, e.g.
//! `kubernetes.default.svc.cluster.local.`; the cluster domain is what follows the service
//! name. We have no DNS client that returns CNAMEs (tokio's `lookup_host` gives addresses
//! only), so we walk the same candidate list Go would (search domains and `ndots` from
//! `/etc/resolv.conf`, each name made absolute) and take the first candidate that resolves.
//! Divergence: a real CNAME record on that name is not followed to its target (in a cluster
//! the name is an A/AAAA record, so the result is the same); and with no `search` line Go
//! falls back to the host name's domain, which we do not.

use std::time::Duration;

/// The name whose canonical form reveals the cluster domain.
pub const API_SERVICE: &str = "kubernetes.default.svc";
/// Upstream's lookup deadline.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Where the resolver configuration is read from.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Why the cluster domain could not be found; shown after `Error getting Kubernetes cluster
/// domain, falling back to "<td>": `.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("lookup {API_SERVICE}: i/o timeout")]
    Timeout,
    #[error("lookup {API_SERVICE}: no such host")]
    NotFound,
    #[error("could not parse cluster domain from CNAME: {0}")]
    Unparsable(String),
}

/// The parts of resolv.conf that shape the candidate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub search: Vec<String>,
    pub ndots: usize,
}

impl Default for ResolvConf {
    fn default() -> Self {
        Self {
            search: Vec::new(),
            ndots: 1,
        }
    }
}

impl ResolvConf {
    /// Parses as Go's `dnsReadConfig`: the last `search` or `domain` line wins, `options
    /// ndots:N` (capped at 15); comments start with `#` or `;`.
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        for line in text.lines() {
            if line.starts_with(['#', ';']) {
                continue;
            }
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("search") => conf.search = fields.map(ToOwned::to_owned).collect(),
                Some("domain") => {
                    if let Some(domain) = fields.next() {
                        conf.search = vec![domain.to_owned()];
                    }
                }
                Some("options") => {
                    for option in fields {
                        if let Some(n) = option.strip_prefix("ndots:") {
                            conf.ndots = n.parse::<usize>().map_or(0, |n| n.min(15));
                        }
                    }
                }
                _ => {}
            }
        }
        conf
    }

    /// The absolute names Go tries for `name`, in order: with fewer than `ndots` dots the
    /// search domains first and the name itself last; otherwise the name first.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_owned()];
        }
        let searched = self
            .search
            .iter()
            .map(|s| format!("{name}.{}.", s.trim_end_matches('.')));
        let absolute = format!("{name}.");
        if name.matches('.').count() >= self.ndots {
            std::iter::once(absolute).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(absolute)).collect()
        }
    }
}

/// The cluster domain in a canonical name: the service name's prefix and the dots around the
/// rest removed (Go's `clusterDomainFromCNAME`); `None` when nothing is left.
pub fn from_cname(cname: &str) -> Option<String> {
    let domain = cname.strip_prefix(API_SERVICE).unwrap_or(cname);
    let domain = domain.trim_matches('.');
    (!domain.is_empty()).then(|| domain.to_owned())
}

/// The cluster domain, or why it is unknown. `resolves` answers whether one absolute name
/// resolves; the whole walk is bounded by [`LOOKUP_TIMEOUT`].
pub async fn lookup<F, Fut>(conf: &ResolvConf, resolves: F) -> Result<String, LookupError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let walk = async {
        for candidate in conf.candidates(API_SERVICE) {
            if resolves(candidate.clone()).await {
                return from_cname(&candidate).ok_or(LookupError::Unparsable(candidate));
            }
        }
        Err(LookupError::NotFound)
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, walk)
        .await
        .unwrap_or(Err(LookupError::Timeout))
}

/// The cluster domain via the system resolver, falling back to `trust_domain` with upstream's
/// error log.
pub async fn detect(trust_domain: &str) -> String {
    let conf = std::fs::read_to_string(RESOLV_CONF)
        .map(|text| ResolvConf::parse(&text))
        .unwrap_or_default();
    let resolves = |name: String| async move {
        tokio::net::lookup_host((name.as_str(), 0))
            .await
            .is_ok_and(|mut addrs| addrs.next().is_some())
    };
    match lookup(&conf, resolves).await {
        Ok(domain) => domain,
        Err(error) => {
            tracing::error!(
                "Error getting Kubernetes cluster domain, falling back to {trust_domain:?}: {error}"
            );
            trust_domain.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_RESOLV_CONF: &str = "search dapr-system.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";

    #[test]
    fn a_pods_resolv_conf_tries_the_search_domains_before_the_bare_name() {
        let conf = ResolvConf::parse(POD_RESOLV_CONF);
        assert_eq!(conf.ndots, 5);
        assert_eq!(
            conf.candidates(API_SERVICE),
            [
                "kubernetes.default.svc.dapr-system.svc.cluster.local.",
                "kubernetes.default.svc.svc.cluster.local.",
                "kubernetes.default.svc.cluster.local.",
                "kubernetes.default.svc.",
            ]
        );
    }

    #[test]
    fn with_enough_dots_the_bare_name_goes_first_and_the_last_search_line_wins() {
        let conf = ResolvConf::parse("search a.org\n# search b.org\ndomain corp.example\n");
        assert_eq!(conf.ndots, 1);
        assert_eq!(
            conf.candidates(API_SERVICE),
            [
                "kubernetes.default.svc.",
                "kubernetes.default.svc.corp.example."
            ]
        );
        assert_eq!(ResolvConf::parse("options ndots:99").ndots, 15);
    }

    #[test]
    fn the_cluster_domain_is_what_follows_the_service_name() {
        assert_eq!(
            from_cname("kubernetes.default.svc.cluster.local.").as_deref(),
            Some("cluster.local")
        );
        assert_eq!(
            from_cname("kubernetes.default.svc.corp.example").as_deref(),
            Some("corp.example")
        );
        assert_eq!(from_cname("kubernetes.default.svc."), None);
    }

    #[tokio::test]
    async fn the_first_candidate_that_resolves_gives_the_domain() {
        let conf = ResolvConf::parse(POD_RESOLV_CONF);
        let found = lookup(&conf, |name| async move {
            name == "kubernetes.default.svc.cluster.local."
        })
        .await
        .unwrap();
        assert_eq!(found, "cluster.local");
    }

    #[tokio::test]
    async fn nothing_resolving_or_only_the_bare_name_is_an_error() {
        let conf = ResolvConf::parse(POD_RESOLV_CONF);
        let none = lookup(&conf, |_| async { false }).await.unwrap_err();
        assert_eq!(
            none.to_string(),
            "lookup kubernetes.default.svc: no such host"
        );
        let bare = lookup(
            &conf,
            |name| async move { name == "kubernetes.default.svc." },
        )
        .await
        .unwrap_err();
        assert_eq!(
            bare.to_string(),
            "could not parse cluster domain from CNAME: kubernetes.default.svc."
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_resolver_times_out_after_two_seconds() {
        let conf = ResolvConf::parse(POD_RESOLV_CONF);
        let started = tokio::time::Instant::now();
        let error = lookup(&conf, |_| std::future::pending::<bool>())
            .await
            .unwrap_err();
        assert!(matches!(error, LookupError::Timeout));
        assert_eq!(started.elapsed(), LOOKUP_TIMEOUT);
    }
}
