//! Breaking split votes. openraft 0.9 draws a member's election timeout once, when it starts, and
//! checks it on a 150 ms tick; two members whose timeouts are close become candidates within a
//! few milliseconds of each other, each votes for itself, and they can split again round after
//! round (seen: 12.9 s without a leader after a leader kill, where one clean round takes 3–4 s;
//! a three-member cluster started at once splits its first vote every time). etcd's raft draws
//! a new random timeout every round; this does the same on top of openraft: a member still a
//! candidate in the same term after a random delay shorter than the minimum election timeout
//! stands again, so one of the two asks first and the other, not yet a candidate in that term,
//! grants it.

use std::{
    hash::{BuildHasher, RandomState},
    ops::Range,
    time::{Duration, Instant},
};

use openraft::{Raft, RaftTypeConfig, ServerState};
use tokio_util::sync::CancellationToken;

/// The re-election delay, in milliseconds: long enough for live peers to answer the first vote
/// request (loopback or LAN), shorter than the minimum election timeout so it fires first
/// (callers must configure `election_timeout_min` above `DELAY_MS.end`).
const DELAY_MS: Range<u64> = 150..850;

/// Runs until `shutdown`: stands again whenever a candidacy outlives a random delay.
pub async fn restand_after_split_votes<C: RaftTypeConfig>(
    raft: Raft<C>,
    shutdown: CancellationToken,
) {
    // The server metrics change with the state and the vote only, not with every log write.
    let mut metrics = raft.server_metrics();
    loop {
        let candidacy = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Candidate).then_some(m.vote.leader_id().get_term())
        };
        if let Some(term) = candidacy {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(random_delay()) => {}
            }
            let still = {
                let m = metrics.borrow_and_update();
                m.state == ServerState::Candidate && m.vote.leader_id().get_term() == term
            };
            if still {
                tracing::info!(term, "no leader after a vote; standing again");
                if raft.trigger().elect().await.is_err() {
                    return;
                }
            }
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}

/// A delay in [`DELAY_MS`]; `RandomState` keys are random per process and per call.
fn random_delay() -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    Duration::from_millis(DELAY_MS.start + random % (DELAY_MS.end - DELAY_MS.start))
}
