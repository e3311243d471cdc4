use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn no_resolv_conf() -> io::Result<String> {
    Err(io::Error::new(io::ErrorKind::NotFound, "no resolv.conf"))
}

fn resolv_conf_panics() -> io::Result<String> {
    panic!("resolv.conf must not be read when KUBE_CLUSTER_DOMAIN is set")
}

const REQUIRED: &[(&str, &str)] = &[
    ("SIDECAR_IMAGE", "daprio/daprd:1.18.3"),
    ("NAMESPACE", "dapr-system"),
];

fn with_required(extra: &[(&str, &str)]) -> HashMap<String, String> {
    vars(&[REQUIRED, extra].concat())
}

fn config(extra: &[(&str, &str)]) -> InjectorConfig {
    InjectorConfig::from_env(&with_required(extra), || {
        Ok("search cluster.local\n".to_owned())
    })
    .unwrap()
}

#[test]
fn defaults_match_upstream_when_only_the_required_keys_are_set() {
    let c = config(&[]);
    assert_eq!(c.sidecar_image, "daprio/daprd:1.18.3");
    assert_eq!(c.sidecar_image_pull_policy, PullPolicy::Always);
    assert_eq!(c.namespace, "dapr-system");
    assert_eq!(c.kube_cluster_domain, "cluster.local");
    assert_eq!(c.allowed_service_accounts, "");
    assert_eq!(c.allowed_service_accounts_prefix_names, "");
    assert_eq!(c.ignore_entrypoint_tolerations, []);
    assert!(c.actors_enabled);
    assert_eq!(c.actors_service.name, "placement");
    assert_eq!(c.actors_service.service, Service::placement());
    assert_eq!(c.reminders_service, None);
    assert!(c.run_as_non_root);
    assert_eq!(c.run_as_user, None);
    assert_eq!(c.run_as_group, None);
    assert!(c.read_only_root_filesystem);
    assert!(!c.enable_k8s_downward_apis);
    assert!(!c.sidecar_drop_all_capabilities);
    assert!(!c.native_sidecar_enabled);
    assert_eq!(c.trust_anchors_file, "/var/run/dapr.io/tls/ca.crt");
    assert_eq!(c.control_plane_trust_domain, "cluster.local");
    assert_eq!(c.sentry_address, "");
    assert_eq!(c.component_sockets_folder, "/tmp/dapr-components-sockets");
    assert_eq!(c.sentry_identity, "dapr-injector");
    assert_eq!(c.sentry_token_file, None);
    assert!(!c.skip_uid_gid_check);
    assert_eq!(c.warnings, []);
    assert_eq!(c.check_identity(), Ok(()));
}

#[test]
fn the_integration_harness_environment_loads() {
    let env = vars(&[
        ("KUBERNETES_SERVICE_HOST", "anything"),
        ("NAMESPACE", "dapr-system"),
        ("SIDECAR_IMAGE", "integration.dapr.io/dapr"),
        ("DAPR_TRUST_ANCHORS_FILE", "/tmp/sentry/ca.crt"),
        (
            "DAPR_CONTROL_PLANE_TRUST_DOMAIN",
            "integration.test.dapr.io",
        ),
        ("DAPR_SENTRY_ADDRESS", "localhost:40001"),
        ("ALLOWED_SERVICE_ACCOUNTS", "custom-ns:custom-sa"),
    ]);
    let c = InjectorConfig::load(&env, || Ok("nameserver 10.255.255.53\n".to_owned())).unwrap();
    assert_eq!(c.sidecar_image, "integration.dapr.io/dapr");
    assert_eq!(c.trust_anchors_file, "/tmp/sentry/ca.crt");
    assert_eq!(c.control_plane_trust_domain, "integration.test.dapr.io");
    assert_eq!(c.sentry_address, "localhost:40001");
    assert_eq!(c.allowed_service_accounts, "custom-ns:custom-sa");
    assert_eq!(c.kube_cluster_domain, "cluster.local");
}

#[test]
fn the_helm_chart_environment_loads() {
    let env = with_required(&[
        (
            "DAPR_TRUST_ANCHORS_FILE",
            "/var/run/secrets/dapr.io/tls/ca.crt",
        ),
        ("DAPR_CONTROL_PLANE_TRUST_DOMAIN", "cluster.local"),
        (
            "DAPR_SENTRY_ADDRESS",
            "dapr-sentry.dapr-system.svc.cluster.local:443",
        ),
        ("KUBE_CLUSTER_DOMAIN", "cluster.local"),
        ("SIDECAR_IMAGE_PULL_POLICY", "IfNotPresent"),
        ("SIDECAR_RUN_AS_NON_ROOT", "true"),
        ("ENABLE_K8S_DOWNWARD_APIS", "false"),
        ("SIDECAR_DROP_ALL_CAPABILITIES", "false"),
        ("SIDECAR_READ_ONLY_ROOT_FILESYSTEM", "true"),
        ("NATIVE_SIDECAR_ENABLED", "false"),
        (
            "IGNORE_ENTRYPOINT_TOLERATIONS",
            r#"[{\"effect\":\"NoSchedule\",\"key\":\"alibabacloud.com/eci\"},{\"effect\":\"NoSchedule\",\"key\":\"azure.com/aci\"}]"#,
        ),
        ("ACTORS_ENABLED", "true"),
        ("ACTORS_SERVICE_NAME", "placement"),
        ("ACTORS_SERVICE_ADDRESS", "dapr-placement-server:50005"),
    ]);
    let c = InjectorConfig::load(&env, resolv_conf_panics).unwrap();
    assert_eq!(c.sidecar_image_pull_policy, PullPolicy::IfNotPresent);
    assert_eq!(c.actors_service.name, "placement");
    assert_eq!(c.actors_service.service, Service::placement());
    // The chart's default tolerations keep literal backslashes: not JSON, so none, with a warning.
    assert_eq!(c.ignore_entrypoint_tolerations, []);
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0]
            .to_string()
            .starts_with(r#"Couldn't parse entrypoint tolerations ([{\"effect\""#),
        "{}",
        c.warnings[0]
    );
}

#[test]
fn a_missing_sidecar_image_is_reported_before_a_missing_namespace() {
    let err = InjectorConfig::load(&vars(&[]), no_resolv_conf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error getting config: required key SIDECAR_IMAGE missing value"
    );
    let err = InjectorConfig::load(&vars(&[("SIDECAR_IMAGE", "x")]), no_resolv_conf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error getting config: required key NAMESPACE missing value"
    );
}

#[test]
fn set_but_empty_values_count_as_set() {
    let c = InjectorConfig::from_env(
        &vars(&[
            ("SIDECAR_IMAGE", ""),
            ("NAMESPACE", "ns"),
            ("SIDECAR_IMAGE_PULL_POLICY", ""),
            ("DAPR_TRUST_ANCHORS_FILE", ""),
            ("DAPR_COMPONENT_SOCKETS_FOLDER", ""),
            ("DAPR_SENTRY_TOKEN_FILE", ""),
            ("KUBE_CLUSTER_DOMAIN", "example.com"),
        ]),
        resolv_conf_panics,
    )
    .unwrap();
    assert_eq!(c.sidecar_image, "");
    assert_eq!(c.sidecar_image_pull_policy, PullPolicy::IfNotPresent);
    assert_eq!(c.trust_anchors_file, "");
    assert_eq!(c.component_sockets_folder, "");
    assert_eq!(c.sentry_token_file.as_deref(), Some(""));
    assert_eq!(c.kube_cluster_domain, "example.com");
}

#[test]
fn pull_policies_map_as_upstream() {
    for (value, policy) in [
        ("Always", PullPolicy::Always),
        ("Never", PullPolicy::Never),
        ("IfNotPresent", PullPolicy::IfNotPresent),
        ("always", PullPolicy::IfNotPresent),
        ("bogus", PullPolicy::IfNotPresent),
    ] {
        assert_eq!(
            config(&[("SIDECAR_IMAGE_PULL_POLICY", value)]).sidecar_image_pull_policy,
            policy,
            "{value}"
        );
    }
}

#[test]
fn booleans_use_is_truthy_and_empty_means_the_default() {
    let c = config(&[
        ("ACTORS_ENABLED", "off"),
        ("SIDECAR_RUN_AS_NON_ROOT", "no"),
        ("SIDECAR_READ_ONLY_ROOT_FILESYSTEM", " "),
        ("ENABLE_K8S_DOWNWARD_APIS", " Yes "),
        ("SIDECAR_DROP_ALL_CAPABILITIES", "ON"),
        ("NATIVE_SIDECAR_ENABLED", "1"),
    ]);
    assert!(!c.actors_enabled);
    assert!(!c.run_as_non_root);
    // Only the empty string (untrimmed) selects the default of a default-true boolean.
    assert!(!c.read_only_root_filesystem);
    assert!(c.enable_k8s_downward_apis);
    assert!(c.sidecar_drop_all_capabilities);
    assert!(c.native_sidecar_enabled);

    let c = config(&[
        ("ACTORS_ENABLED", ""),
        ("SIDECAR_RUN_AS_NON_ROOT", ""),
        ("NATIVE_SIDECAR_ENABLED", "enabled"),
    ]);
    assert!(c.actors_enabled);
    assert!(c.run_as_non_root);
    assert!(!c.native_sidecar_enabled);
}

#[test]
fn a_custom_actors_service_needs_a_valid_address() {
    let c = config(&[
        ("ACTORS_SERVICE_NAME", "actors"),
        ("ACTORS_SERVICE_ADDRESS", "my-actors:5000"),
    ]);
    assert_eq!(c.actors_service.name, "actors");
    assert_eq!(
        c.actors_service.service.address("ns", "cluster.local"),
        "my-actors.ns.svc.cluster.local:5000"
    );

    let err = InjectorConfig::load(
        &with_required(&[("ACTORS_SERVICE_NAME", "actors")]),
        no_resolv_conf,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error getting config: failed to parse configuration: invalid value for actor service address: service is not in the correct format '<name>:<port>': "
    );
}

#[test]
fn the_actors_address_is_ignored_without_a_service_name() {
    let c = config(&[("ACTORS_SERVICE_ADDRESS", "garbage")]);
    assert_eq!(c.actors_service.service, Service::placement());
}

#[test]
fn reminders_services_follow_upstreams_rules() {
    assert_eq!(
        config(&[("REMINDERS_SERVICE_ADDRESS", "r:1")]).reminders_service,
        None
    );
    let c = config(&[
        ("REMINDERS_SERVICE_NAME", "default"),
        ("REMINDERS_SERVICE_ADDRESS", "ignored"),
    ]);
    let r = c.reminders_service.unwrap();
    assert_eq!(r.name, "default");
    assert_eq!(
        r.service.address("ns", "cluster.local"),
        ".ns.svc.cluster.local:0"
    );
    let c = config(&[
        ("REMINDERS_SERVICE_NAME", "reminders"),
        ("REMINDERS_SERVICE_ADDRESS", "rem-svc:7000"),
    ]);
    assert_eq!(
        c.reminders_service.unwrap().service.to_string(),
        "rem-svc:7000"
    );

    let env = with_required(&[
        ("REMINDERS_SERVICE_NAME", "r"),
        ("REMINDERS_SERVICE_ADDRESS", "a:0"),
    ]);
    assert_eq!(
        InjectorConfig::load(&env, no_resolv_conf)
            .unwrap_err()
            .to_string(),
        "Error getting config: failed to parse configuration: invalid value for reminder service address: service is not in the correct format '<name>:<port>': port is invalid"
    );
}

#[test]
fn run_as_ids_parse_as_go_integers() {
    let c = config(&[
        ("SIDECAR_RUN_AS_USER", "1000"),
        ("SIDECAR_RUN_AS_GROUP", "+3000"),
    ]);
    assert_eq!(c.run_as_user, Some(1000));
    assert_eq!(c.run_as_group, Some(3000));
    assert_eq!(config(&[("SIDECAR_RUN_AS_USER", "")]).run_as_user, None);

    let err = InjectorConfig::load(
        &with_required(&[("SIDECAR_RUN_AS_USER", "abc")]),
        no_resolv_conf,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error getting config: failed to parse configuration: failed to parse runAsUser: strconv.Atoi: parsing \"abc\": invalid syntax"
    );
    let err = InjectorConfig::load(
        &with_required(&[("SIDECAR_RUN_AS_GROUP", "99999999999999999999")]),
        no_resolv_conf,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error getting config: failed to parse configuration: failed to parse runAsGroup: strconv.Atoi: parsing \"99999999999999999999\": value out of range"
    );
}

#[test]
fn the_cluster_domain_is_detected_only_when_not_configured() {
    let c = InjectorConfig::from_env(&with_required(&[]), || {
        Ok("search svc.example.com example.com\n".to_owned())
    })
    .unwrap();
    assert_eq!(c.kube_cluster_domain, "example.com");
    let c = InjectorConfig::from_env(
        &with_required(&[("KUBE_CLUSTER_DOMAIN", "corp.local")]),
        resolv_conf_panics,
    )
    .unwrap();
    assert_eq!(c.kube_cluster_domain, "corp.local");
}

#[test]
fn an_unreadable_resolv_conf_falls_back_to_cluster_local_with_a_warning() {
    let c = InjectorConfig::from_env(&with_required(&[]), no_resolv_conf).unwrap();
    assert_eq!(c.kube_cluster_domain, "cluster.local");
    assert_eq!(
        c.warnings,
        [ConfigWarning::ClusterDomain {
            error: "no resolv.conf".into()
        }]
    );
    assert_eq!(
        c.warnings[0].to_string(),
        "Failed to get clusterDomain err:no resolv.conf, set default:cluster.local"
    );
}

#[test]
fn valid_tolerations_are_decoded() {
    let c = config(&[(
        "IGNORE_ENTRYPOINT_TOLERATIONS",
        r#"[{"effect":"NoSchedule","key":"aws"}]"#,
    )]);
    assert_eq!(c.ignore_entrypoint_tolerations.len(), 1);
    assert_eq!(c.ignore_entrypoint_tolerations[0].key, "aws");
    assert_eq!(c.warnings, []);
}

#[test]
fn security_variables_are_read() {
    let c = config(&[
        ("SENTRY_LOCAL_IDENTITY", "injector-2"),
        ("DAPR_SENTRY_TOKEN_FILE", "/var/token"),
        ("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK", "true"),
    ]);
    assert_eq!(c.sentry_identity, "injector-2");
    assert_eq!(c.sentry_token_file.as_deref(), Some("/var/token"));
    assert!(c.skip_uid_gid_check);
    assert!(!config(&[("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK", "TRUE")]).skip_uid_gid_check);
    assert_eq!(
        config(&[("SENTRY_LOCAL_IDENTITY", "")]).sentry_identity,
        "dapr-injector"
    );
}

#[test]
fn an_empty_namespace_passes_reading_but_is_fatal_at_the_identity_check() {
    let env = vars(&[("SIDECAR_IMAGE", "x"), ("NAMESPACE", "")]);
    assert!(InjectorConfig::from_env(&env, no_resolv_conf).is_ok());
    assert_eq!(
        InjectorConfig::load(&env, no_resolv_conf)
            .unwrap_err()
            .to_string(),
        "Failed to get current namespace: 'NAMESPACE' environment variable is empty"
    );
}

#[test]
fn the_trust_domain_must_be_set_and_valid() {
    let err = InjectorConfig::load(
        &with_required(&[("DAPR_CONTROL_PLANE_TRUST_DOMAIN", "")]),
        no_resolv_conf,
    )
    .unwrap_err();
    assert_eq!(err, StartupError::TrustDomainRequired);
    assert_eq!(err.to_string(), "control plane trust domain is required");
    let err = InjectorConfig::load(
        &with_required(&[("DAPR_CONTROL_PLANE_TRUST_DOMAIN", "Bad Domain")]),
        no_resolv_conf,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid control plane trust domain: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
    );
}

#[test]
fn the_prefix_names_variable_is_deprecated() {
    assert_eq!(config(&[]).prefix_names_deprecation(), None);
    assert_eq!(
        config(&[("ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES", "ns:sa-*")]).prefix_names_deprecation(),
        Some(
            "ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES is deprecated; use ALLOWED_SERVICE_ACCOUNTS instead, which now supports glob patterns"
        )
    );
}

#[test]
fn is_truthy_matches_dapr_kit() {
    for t in ["y", "Yes", "TRUE", "t", "on", "1", " true "] {
        assert!(is_truthy(t), "{t:?}");
    }
    for f in ["", "n", "no", "false", "0", "enabled", "truee"] {
        assert!(!is_truthy(f), "{f:?}");
    }
}
