use super::*;

type Core = Disseminator<&'static str>;

fn settings(coalesce: bool) -> Settings {
    Settings {
        replication_factor: 100,
        timeout_text: "1s".into(),
        coalesce,
    }
}

fn host(name: &str, id: &str, entities: &[&str]) -> Host {
    Host {
        name: name.into(),
        id: id.into(),
        namespace: "default".into(),
        entities: entities.iter().map(|e| (*e).to_owned()).collect(),
        ..Host::default()
    }
}

fn ack(op: HostOperation, version: u64) -> Host {
    Host {
        id: "x".into(),
        namespace: "default".into(),
        operation: op as i32,
        version: Some(version),
        ..Host::default()
    }
}

/// What the shell saw, in a form that is easy to assert on.
#[derive(Debug, Default)]
struct Seen {
    activated: Vec<(StreamIdx, &'static str)>,
    sent: Vec<(StreamIdx, String, u64)>,
    closed: Vec<(StreamIdx, CloseReason)>,
    rejected: Vec<&'static str>,
    timeouts: Vec<u64>,
    coalesce: usize,
    gauges: Option<(u64, u64)>,
    tables: Vec<(StreamIdx, PlacementTables)>,
}

fn drain(core: &mut Core) -> Seen {
    let mut seen = Seen::default();
    for effect in core.take_effects() {
        match effect {
            Effect::Activate { idx, conn } => seen.activated.push((idx, conn)),
            Effect::Send { idx, order } => {
                let o = &order.order;
                seen.sent.push((idx, o.operation.clone(), o.version));
                if let Some(t) = &o.tables {
                    seen.tables.push((idx, t.clone()));
                }
            }
            Effect::Close { idx, reason } => seen.closed.push((idx, reason)),
            Effect::Reject { conn } => seen.rejected.push(conn),
            Effect::ArmTimeout { version } => seen.timeouts.push(version),
            Effect::ArmCoalesce => seen.coalesce += 1,
            Effect::Gauges {
                runtimes,
                actor_runtimes,
            } => seen.gauges = Some((runtimes, actor_runtimes)),
        }
    }
    seen
}

fn ops(seen: &Seen, idx: StreamIdx) -> Vec<(String, u64)> {
    seen.sent
        .iter()
        .filter(|(i, _, _)| *i == idx)
        .map(|(_, op, v)| (op.clone(), *v))
        .collect()
}

fn op(name: &str, v: u64) -> (String, u64) {
    (name.to_owned(), v)
}

/// Drives stream `idx` through a whole round by acknowledging each phase explicitly.
fn ack_round(core: &mut Core, idxs: &[StreamIdx], version: u64) {
    for phase in [
        HostOperation::Lock,
        HostOperation::Update,
        HostOperation::Unlock,
    ] {
        for idx in idxs {
            core.host_received(*idx, ack(phase, version));
        }
    }
}

#[test]
fn the_first_actor_host_gets_a_three_phase_round_at_version_one() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "app-a", &["typeB", "typeA"]));
    let seen = drain(&mut core);
    assert_eq!(seen.activated, vec![(0, "a")]);
    assert_eq!(ops(&seen, 0), vec![op("lock", 1)]);
    assert_eq!(seen.timeouts, vec![1]);
    assert_eq!(seen.gauges, Some((1, 1)));

    core.host_received(0, ack(HostOperation::Lock, 1));
    let seen = drain(&mut core);
    assert_eq!(ops(&seen, 0), vec![op("update", 1)]);
    let tables = &seen.tables[0].1;
    assert_eq!(tables.version, "1");
    assert_eq!(tables.replication_factor, 100);
    let mut types: Vec<_> = tables.entries.keys().cloned().collect();
    types.sort();
    assert_eq!(types, ["typeA", "typeB"]);
    let stored = &tables.entries["typeA"].load_map["a:1"];
    assert_eq!(stored.entities, ["typeA", "typeB"], "entities are sorted");

    core.host_received(0, ack(HostOperation::Update, 1));
    assert_eq!(ops(&drain(&mut core), 0), vec![op("unlock", 1)]);
    core.host_received(0, ack(HostOperation::Unlock, 1));
    assert!(drain(&mut core).sent.is_empty());
    assert_eq!(core.operation(), Phase::Report);
    assert_eq!(core.version(), 1);
}

#[test]
fn a_host_without_actors_gets_a_one_off_push_and_no_round() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "app-a", &["t"]));
    drain(&mut core);
    ack_round(&mut core, &[0], 1);
    drain(&mut core);

    core.conn_add("n", host("n:1", "app-n", &[]));
    let seen = drain(&mut core);
    assert_eq!(ops(&seen, 0), vec![], "the actor host hears nothing");
    assert_eq!(
        ops(&seen, 1),
        vec![op("lock", 1), op("update", 1), op("unlock", 1)]
    );
    assert!(seen.timeouts.is_empty());
    assert_eq!(seen.gauges, Some((2, 1)));
    assert_eq!(core.version(), 1);

    // Its acks of the push are swallowed; leaving starts no round either.
    ack_round(&mut core, &[1], 1);
    core.stream_closed(1);
    let seen = drain(&mut core);
    assert!(seen.sent.is_empty());
    assert_eq!(core.version(), 1);
}

#[test]
fn the_first_host_of_a_namespace_without_actors_is_pushed_version_zero() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("n", host("n:1", "app-n", &[]));
    let seen = drain(&mut core);
    assert_eq!(
        ops(&seen, 0),
        vec![op("lock", 0), op("update", 0), op("unlock", 0)]
    );
    assert_eq!(seen.tables[0].1.version, "0");
    assert!(seen.tables[0].1.entries.is_empty());
    assert_eq!(core.state().version, 0);
    assert!(core.state().hosts.is_empty());
}

#[test]
fn connections_during_a_round_wait_and_then_join_one_round_together() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    drain(&mut core);
    core.conn_add("b", host("b:1", "b", &["t"]));
    core.conn_add("c", host("c:1", "c", &["u"]));
    let seen = drain(&mut core);
    assert!(seen.activated.is_empty(), "queued streams are not started");
    assert!(seen.sent.is_empty());

    ack_round(&mut core, &[0], 1);
    let seen = drain(&mut core);
    assert_eq!(seen.activated, vec![(1, "b"), (2, "c")]);
    for idx in 0..3 {
        assert_eq!(ops(&seen, idx).last(), Some(&op("lock", 2)), "stream {idx}");
    }
    ack_round(&mut core, &[0, 1, 2], 2);
    let seen = drain(&mut core);
    assert_eq!(seen.tables.len(), 3);
    assert_eq!(seen.tables[0].1.entries["t"].load_map.len(), 2);
    assert_eq!(core.state().hosts.len(), 3);
    assert_eq!(core.operation(), Phase::Report);
}

#[test]
fn legacy_clients_acknowledge_the_current_phase_with_any_message() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    drain(&mut core);
    // A plain host during a round is an ack, and its entities are not applied.
    core.host_received(0, host("a:1", "a", &["other"]));
    assert_eq!(ops(&drain(&mut core), 0), vec![op("update", 1)]);
    core.host_received(0, host("a:1", "a", &["t"]));
    core.host_received(0, host("a:1", "a", &["t"]));
    assert_eq!(core.operation(), Phase::Report);
    assert_eq!(core.state().hosts[0].entities, ["t"]);
}

#[test]
fn stale_versions_are_ignored() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    drain(&mut core);
    ack_round(&mut core, &[0], 1);
    core.host_received(0, host("a:1", "a", &["t", "u"]));
    drain(&mut core);
    assert_eq!(core.version(), 2);
    core.host_received(0, ack(HostOperation::Lock, 1));
    assert!(drain(&mut core).sent.is_empty());
    core.host_received(0, ack(HostOperation::Lock, 2));
    assert_eq!(ops(&drain(&mut core), 0), vec![op("update", 2)]);
}

#[test]
fn an_entity_change_mid_round_preempts_it_with_a_new_version() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    let mut report = host("a:1", "a", &["t", "u"]);
    report.operation = HostOperation::Report as i32;
    core.host_received(0, report);
    let seen = drain(&mut core);
    assert_eq!(ops(&seen, 0), vec![op("lock", 2)]);
    assert_eq!(seen.timeouts, vec![2]);
    core.timeout_fired(1);
    assert!(
        drain(&mut core).closed.is_empty(),
        "the old round's timer is stale"
    );
}

#[test]
fn an_actor_host_leaving_while_idle_starts_a_deletion_round() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    core.conn_add("b", host("b:1", "b", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0, 1], 2);
    core.take_effects();

    core.stream_closed(1);
    let seen = drain(&mut core);
    assert_eq!(ops(&seen, 0), vec![op("lock", 3)]);
    assert_eq!(seen.gauges, Some((1, 1)));
    ack_round(&mut core, &[0], 3);
    let seen = drain(&mut core);
    assert_eq!(
        seen.tables[0].1.entries["t"]
            .load_map
            .keys()
            .collect::<Vec<_>>(),
        ["a:1"]
    );
    // Its close is processed once: a second report changes nothing.
    core.stream_closed(1);
    assert!(drain(&mut core).sent.is_empty());
}

#[test]
fn a_close_mid_round_by_the_only_laggard_advances_the_phase() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    core.conn_add("b", host("b:1", "b", &["u"]));
    core.take_effects();
    core.host_received(0, ack(HostOperation::Lock, 2));
    core.host_received(1, ack(HostOperation::Lock, 2));
    core.host_received(0, ack(HostOperation::Update, 2));
    core.take_effects();
    // b received UPDATE but closes instead of acking: a gets UNLOCK at once.
    core.stream_closed(1);
    assert_eq!(ops(&drain(&mut core), 0), vec![op("unlock", 2)]);
    core.host_received(0, ack(HostOperation::Unlock, 2));
    // Completion processes the queued delete in a new round.
    let seen = drain(&mut core);
    assert_eq!(ops(&seen, 0), vec![op("lock", 3)]);
    ack_round(&mut core, &[0], 3);
    let hosts: Vec<_> = core.state().hosts.into_iter().map(|h| h.id).collect();
    assert_eq!(hosts, ["a"]);
}

#[test]
fn a_timeout_kicks_only_the_streams_that_did_not_ack_and_restarts_the_round() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    core.conn_add("slow", host("s:1", "slow", &["t"]));
    core.take_effects();
    core.host_received(0, ack(HostOperation::Lock, 2));
    core.conn_add("late", host("l:1", "late", &["u"]));
    core.take_effects();

    core.timeout_fired(2);
    let seen = drain(&mut core);
    assert_eq!(
        seen.closed,
        vec![(
            1,
            CloseReason::Timeout {
                message: "dissemination timeout after 1s for version 2".into()
            }
        )]
    );
    assert_eq!(seen.activated, vec![(2, "late")], "queued adds survive");
    assert_eq!(ops(&seen, 0), vec![op("lock", 3)]);
    assert_eq!(ops(&seen, 2), vec![op("lock", 3)]);
    assert_eq!(seen.timeouts, vec![3]);
    let ids: Vec<_> = core.state().hosts.into_iter().map(|h| h.id).collect();
    assert_eq!(ids, ["a", "late"]);

    // The kicked stream's reader still reports its close: ignored.
    core.stream_closed(1);
    assert!(drain(&mut core).sent.is_empty());
}

#[test]
fn a_sole_stream_that_never_acks_is_kicked_and_the_namespace_idles_at_the_next_version() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    core.timeout_fired(1);
    let seen = drain(&mut core);
    assert_eq!(seen.closed.len(), 1);
    assert_eq!(seen.gauges, Some((0, 0)));
    assert_eq!(core.version(), 2);
    assert_eq!(core.operation(), Phase::Report);
    assert_eq!(core.stream_count(), 0);
}

#[test]
fn a_timeout_after_the_round_completed_kicks_nobody() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    core.take_effects();
    core.timeout_fired(1);
    assert!(drain(&mut core).closed.is_empty());
}

#[test]
fn with_a_coalesce_window_adds_and_deletes_after_a_round_wait_for_the_timer() {
    let mut core = Core::new("default", settings(true));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    assert_eq!(drain(&mut core).coalesce, 1, "armed even with empty queues");

    core.conn_add("b", host("b:1", "b", &["t"]));
    core.conn_add("c", host("c:1", "c", &["u"]));
    assert!(drain(&mut core).activated.is_empty());
    core.coalesce_fired();
    let seen = drain(&mut core);
    assert_eq!(seen.activated, vec![(1, "b"), (2, "c")]);
    for idx in 0..3 {
        assert_eq!(ops(&seen, idx), vec![op("lock", 2)]);
    }
    // A second fire with nothing armed does nothing.
    core.coalesce_fired();
    assert!(drain(&mut core).sent.is_empty());
}

#[test]
fn a_coalesce_fire_during_a_round_leaves_the_queues_to_the_round() {
    let mut core = Core::new("default", settings(true));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    core.take_effects();
    core.host_received(0, host("a:1", "a", &["t", "u"]));
    core.conn_add("b", host("b:1", "b", &["t"]));
    core.take_effects();
    core.coalesce_fired();
    assert!(drain(&mut core).activated.is_empty());
    ack_round(&mut core, &[0], 2);
    let seen = drain(&mut core);
    assert_eq!(seen.coalesce, 1);
    core.coalesce_fired();
    let seen = drain(&mut core);
    assert_eq!(seen.activated, vec![(1, "b")]);
}

#[test]
fn a_queued_no_actor_host_gets_a_push_after_the_round_and_the_others_hear_nothing() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    core.conn_add("n", host("n:1", "n", &[]));
    ack_round(&mut core, &[0], 1);
    let seen = drain(&mut core);
    assert_eq!(ops(&seen, 0), vec![op("update", 1), op("unlock", 1)]);
    assert_eq!(
        ops(&seen, 1),
        vec![op("lock", 1), op("update", 1), op("unlock", 1)]
    );
}

#[test]
fn a_new_connection_while_idle_applies_queued_deletes_and_orphans() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    // The last stream leaves: its entry stays as an orphan.
    core.stream_closed(0);
    core.take_effects();
    assert_eq!(core.state().hosts.len(), 1);
    core.conn_add("b", host("b:1", "b", &["t"]));
    let seen = drain(&mut core);
    assert_eq!(ops(&seen, 1), vec![op("lock", 2)]);
    let ids: Vec<_> = core.state().hosts.into_iter().map(|h| h.id).collect();
    assert_eq!(ids, ["b"]);
}

#[test]
fn shutdown_closes_every_stream_and_rejects_queued_connections() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.conn_add("b", host("b:1", "b", &["t"]));
    core.take_effects();
    core.shutdown();
    let seen = drain(&mut core);
    assert_eq!(seen.closed, vec![(0, CloseReason::Shutdown)]);
    assert_eq!(seen.rejected, vec!["b"]);
    assert_eq!(seen.gauges, Some((0, 0)));
    assert!(core.state().hosts.is_empty());
}

#[test]
fn state_lists_hosts_sorted_by_name() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("z", host("z:1", "z", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    let names: Vec<_> = core.state().hosts.into_iter().map(|h| h.name).collect();
    assert_eq!(names, ["a:1", "z:1"]);
    assert_eq!(core.state().version, 2);
}

#[test]
fn a_report_that_only_renames_the_host_is_not_a_change() {
    let mut core = Core::new("default", settings(false));
    core.conn_add("a", host("a:1", "a", &["t"]));
    core.take_effects();
    ack_round(&mut core, &[0], 1);
    core.take_effects();
    let mut renamed = host("a:2", "a", &["t"]);
    renamed.operation = HostOperation::Report as i32;
    core.host_received(0, renamed);
    assert!(drain(&mut core).sent.is_empty());
    assert_eq!(core.state().hosts[0].name, "a:1");
}

/// A small deterministic PRNG (xorshift) so the stress test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Hostile clients: random joins, leaves, reports, acks for any phase and version (stale,
/// current, future), legacy heartbeats, timeouts and coalesce fires in any order. The core must
/// never panic, never count more acks than streams, never lower its version, and — once the
/// survivors behave — every one of them must see a completed round.
#[test]
fn random_event_sequences_keep_the_invariants_and_well_behaved_streams_finish_a_round() {
    const NAMES: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let coalesce = seed % 3 == 0;
        let mut core = Core::new("default", settings(coalesce));
        let mut live: Vec<StreamIdx> = Vec::new();
        let mut last_version = 0;
        for _ in 0..400 {
            match rng.below(9) {
                0 | 1 => {
                    let n = rng.below(3) as usize;
                    let entities: Vec<&str> = ["a", "b"][..n].to_vec();
                    let name = NAMES[rng.below(8) as usize];
                    core.conn_add(name, host(name, name, &entities));
                }
                2 if !live.is_empty() => {
                    let idx = live[rng.below(live.len() as u64) as usize];
                    core.stream_closed(idx);
                }
                3 if !live.is_empty() => {
                    let idx = live[rng.below(live.len() as u64) as usize];
                    let mut report = host("x", "x", &[["a"], ["b"]][rng.below(2) as usize]);
                    report.operation = HostOperation::Report as i32;
                    core.host_received(idx, report);
                }
                4 | 5 if !live.is_empty() => {
                    let idx = live[rng.below(live.len() as u64) as usize];
                    let op = [
                        HostOperation::Lock,
                        HostOperation::Update,
                        HostOperation::Unlock,
                        HostOperation::Report,
                    ][rng.below(4) as usize];
                    let version = core.version() + rng.below(3) - rng.below(2).min(core.version());
                    core.host_received(idx, ack(op, version));
                }
                6 if !live.is_empty() => {
                    let idx = live[rng.below(live.len() as u64) as usize];
                    core.host_received(idx, host("x", "x", &["a"]));
                }
                7 => core.timeout_fired(core.version().saturating_sub(rng.below(2))),
                _ => core.coalesce_fired(),
            }
            for effect in core.take_effects() {
                match effect {
                    Effect::Activate { idx, .. } => live.push(idx),
                    Effect::Close { idx, .. } => live.retain(|i| *i != idx),
                    _ => {}
                }
            }
            live.retain(|idx| core.streams.contains_key(idx));
            assert!(
                core.acked <= core.streams.len(),
                "seed {seed}: acked > streams"
            );
            assert!(
                core.version() >= last_version,
                "seed {seed}: version went down"
            );
            last_version = core.version();
        }

        // From here on every stream behaves: the timers fire and each phase is acked.
        for _ in 0..20 {
            core.coalesce_fired();
            if core.operation() == Phase::Report {
                break;
            }
            let version = core.version();
            for op in [
                HostOperation::Lock,
                HostOperation::Update,
                HostOperation::Unlock,
            ] {
                for idx in live.clone() {
                    core.host_received(idx, ack(op, version));
                }
            }
            core.timeout_fired(core.version());
            for effect in core.take_effects() {
                if let Effect::Activate { idx, .. } = effect {
                    live.push(idx);
                }
            }
            live.retain(|idx| core.streams.contains_key(idx));
        }
        assert_eq!(
            core.operation(),
            Phase::Report,
            "seed {seed}: the round never finished"
        );
    }
}
