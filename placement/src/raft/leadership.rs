//! When this node counts as leader, and when it has lost leadership: a pure decision over what
//! openraft's metrics report, so the rule is tested without a network.

use std::time::Duration;

use tokio::time::Instant;

/// What one openraft metrics report says about this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// This node is in the leader state and its own vote is the committed one.
    pub leading: bool,
    /// How long ago, at `reported_at`, a quorum last acknowledged this leader (`None` until one
    /// has, or when not leading).
    pub since_quorum_ack: Option<Duration>,
    /// When the report was received.
    pub reported_at: Instant,
}

/// Why a leader is not one any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// It saw a higher term (another leader or candidate) and stepped down.
    SteppedDown,
    /// A quorum has not acknowledged it for longer than the leader lease.
    NoQuorum { since: Duration },
}

/// The outcome of one observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not (yet) leader and never was.
    Waiting,
    /// Just became leader.
    Acquired,
    /// Still leader.
    Leading,
    /// Was leader and is not any more: fatal, as upstream.
    Lost(Loss),
}

/// Follows leadership across observations.
#[derive(Debug)]
pub struct Tracker {
    lease: Duration,
    leader_since: Option<Instant>,
}

impl Tracker {
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            leader_since: None,
        }
    }

    /// Judges `obs` at time `now` (which may be later than the report, when no new report came).
    pub fn observe(&mut self, obs: &Observation, now: Instant) -> Verdict {
        let Some(since) = self.leader_since else {
            if obs.leading {
                self.leader_since = Some(obs.reported_at);
                return Verdict::Acquired;
            }
            return Verdict::Waiting;
        };
        if !obs.leading {
            return Verdict::Lost(Loss::SteppedDown);
        }
        // Until the first quorum acknowledgement, count from the election.
        let acked_at = match obs.since_quorum_ack {
            Some(age) => obs.reported_at.checked_sub(age).unwrap_or(since),
            None => since,
        };
        let silence = now.saturating_duration_since(acked_at);
        if silence > self.lease {
            return Verdict::Lost(Loss::NoQuorum { since: silence });
        }
        Verdict::Leading
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(2);

    fn obs(leading: bool, ack_ms: Option<u64>, at: Instant) -> Observation {
        Observation {
            leading,
            since_quorum_ack: ack_ms.map(Duration::from_millis),
            reported_at: at,
        }
    }

    #[test]
    fn a_follower_is_waiting_until_it_leads() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(LEASE);
        assert_eq!(tracker.observe(&obs(false, None, t0), t0), Verdict::Waiting);
        assert_eq!(tracker.observe(&obs(true, None, t0), t0), Verdict::Acquired);
        assert_eq!(
            tracker.observe(&obs(true, Some(10), t0), t0),
            Verdict::Leading
        );
    }

    #[test]
    fn a_leader_that_steps_down_has_lost_leadership() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(LEASE);
        tracker.observe(&obs(true, None, t0), t0);
        assert_eq!(
            tracker.observe(&obs(false, None, t0), t0),
            Verdict::Lost(Loss::SteppedDown)
        );
    }

    #[test]
    fn a_leader_without_quorum_acks_for_longer_than_the_lease_has_lost_leadership() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(LEASE);
        tracker.observe(&obs(true, Some(0), t0), t0);
        let report = obs(true, Some(1500), t0 + Duration::from_millis(1500));
        assert_eq!(
            tracker.observe(&report, t0 + Duration::from_millis(1500)),
            Verdict::Leading
        );
        // No newer report: the silence keeps growing with the clock.
        assert_eq!(
            tracker.observe(&report, t0 + Duration::from_millis(2100)),
            Verdict::Lost(Loss::NoQuorum {
                since: Duration::from_millis(2100)
            })
        );
    }

    #[test]
    fn a_leader_never_acknowledged_by_a_quorum_loses_leadership_a_lease_after_its_election() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(LEASE);
        tracker.observe(&obs(true, None, t0), t0);
        let later = t0 + Duration::from_millis(1999);
        assert_eq!(
            tracker.observe(&obs(true, None, later), later),
            Verdict::Leading
        );
        let later = t0 + Duration::from_millis(2001);
        assert!(matches!(
            tracker.observe(&obs(true, None, later), later),
            Verdict::Lost(Loss::NoQuorum { .. })
        ));
    }
}
