//! Detecting the cluster's DNS domain from `/etc/resolv.conf` when `KUBE_CLUSTER_DOMAIN` is
//! empty (upstream `utils/resolvconf.go`).

/// Used when nothing better is known.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// Where the resolver configuration is read from.
pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";

/// The cluster domain a resolv.conf implies: the lexicographically first domain of the last
/// `search` line (comments after `#` removed), else [`DEFAULT_CLUSTER_DOMAIN`].
///
/// Upstream matches lines with the Go regexp `^\s*search\s*(([^\s]+\s*)*)$`, so `search` need
/// not be followed by a space (`searchfoo` searches `foo`); this keeps that quirk.
pub fn from_resolv_conf(content: &str) -> String {
    let mut domains: Vec<&str> = Vec::new();
    for line in content.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.split_once('#').map_or(line, |(before, _)| before);
        let line = line.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
        if let Some(rest) = line.strip_prefix("search") {
            domains = rest.split_whitespace().collect();
        }
    }
    domains.sort_unstable();
    domains
        .first()
        .map_or_else(|| DEFAULT_CLUSTER_DOMAIN.to_owned(), |d| (*d).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_search_domain_in_sorted_order_wins() {
        let conf = "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n";
        assert_eq!(from_resolv_conf(conf), "cluster.local");
        let conf = "search ns.svc.example.com svc.example.com example.com\n";
        assert_eq!(from_resolv_conf(conf), "example.com");
    }

    #[test]
    fn the_last_search_line_counts_and_comments_are_ignored() {
        let conf = "search a.org\n  search z.org y.org # x.org\r\n#search b.org\n";
        assert_eq!(from_resolv_conf(conf), "y.org");
    }

    #[test]
    fn no_search_line_or_an_empty_one_gives_the_default() {
        assert_eq!(
            from_resolv_conf("nameserver 10.255.255.53\n"),
            "cluster.local"
        );
        assert_eq!(from_resolv_conf("search\n"), "cluster.local");
        assert_eq!(from_resolv_conf(""), "cluster.local");
    }

    #[test]
    fn search_glued_to_a_domain_still_counts_as_upstreams_regexp_does() {
        assert_eq!(from_resolv_conf("searchfoo.org\n"), "foo.org");
    }
}
