use super::*;

const NODE: Hadd = Hadd::new(220, 1);

/// Whole milliseconds, so that boundaries are exact.
fn secs(s: f64) -> Duration {
    Duration::from_millis((s * 1000.0).round() as u64)
}

fn states(transitions: &[Transition]) -> Vec<(Hadd, NodeState)> {
    transitions.iter().map(|t| (t.hadd, t.to)).collect()
}

fn watched(period: f64) -> Liveness {
    let mut liveness = Liveness::new(LivenessConfig::default());
    assert!(liveness.is_empty());
    liveness.set_period(NODE, secs(period), secs(0.0));
    liveness.on_heartbeat(NODE, NodeState::Online, secs(0.0));
    assert!(!liveness.is_empty());
    liveness
}

#[test]
fn a_silent_node_is_pending_after_three_missed_periods_then_failed_after_six() {
    let mut liveness = watched(10.0);
    assert!(
        liveness.on_tick(secs(32.9)).is_empty(),
        "2.99 tolerant periods"
    );
    assert_eq!(
        states(&liveness.on_tick(secs(33.0))),
        [(NODE, NodeState::Pending)]
    );
    assert!(liveness.on_tick(secs(40.0)).is_empty(), "reported once");
    assert!(liveness.on_tick(secs(65.9)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(66.0))),
        [(NODE, NodeState::Failed)]
    );
    assert!(liveness.on_tick(secs(600.0)).is_empty(), "no re-dispatch");
}

#[test]
fn a_long_silence_reports_pending_then_failed_in_one_tick() {
    let mut liveness = watched(1.0);
    assert_eq!(
        states(&liveness.on_tick(secs(100.0))),
        [(NODE, NodeState::Pending), (NODE, NodeState::Failed)]
    );
}

#[test]
fn failed_becomes_dead_after_the_dead_delay() {
    let mut liveness = Liveness::new(LivenessConfig {
        dead_after: secs(60.0),
        ..LivenessConfig::default()
    });
    liveness.set_period(NODE, secs(1.0), secs(0.0));
    liveness.on_heartbeat(NODE, NodeState::Online, secs(0.0));
    liveness.on_tick(secs(10.0));
    assert_eq!(liveness.state(NODE), NodeState::Failed);
    assert!(liveness.on_tick(secs(69.9)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(70.0))),
        [(NODE, NodeState::Dead)]
    );
}

#[test]
fn a_node_that_reports_its_own_failure_while_beating_never_becomes_dead() {
    let mut liveness = Liveness::new(LivenessConfig {
        dead_after: secs(60.0),
        ..LivenessConfig::default()
    });
    liveness.set_period(NODE, secs(1.0), secs(0.0));
    for second in 0..200 {
        liveness.on_heartbeat(NODE, NodeState::Failed, secs(f64::from(second)));
        assert!(liveness.on_tick(secs(f64::from(second) + 0.5)).is_empty());
    }
}

#[test]
fn a_node_that_beats_again_is_online_again() {
    let mut liveness = watched(1.0);
    liveness.on_tick(secs(100.0));
    assert_eq!(
        states(&liveness.on_heartbeat(NODE, NodeState::Online, secs(101.0))),
        [(NODE, NodeState::Online)]
    );
    assert!(liveness.on_tick(secs(102.0)).is_empty());
}

#[test]
fn offline_is_at_once_and_a_controllers_offline_covers_its_nodes() {
    let mut liveness = watched(10.0);
    let other = Hadd::new(221, 1);
    liveness.on_heartbeat(Hadd::new(220, 0), NodeState::Online, secs(0.0));
    liveness.on_heartbeat(other, NodeState::Online, secs(0.0));
    let offline = liveness.on_heartbeat(Hadd::new(220, 0), NodeState::Offline, secs(1.0));
    assert_eq!(
        states(&offline),
        [
            (Hadd::new(220, 0), NodeState::Offline),
            (NODE, NodeState::Offline)
        ]
    );
    assert_eq!(liveness.state(other), NodeState::Online);
    assert!(
        liveness
            .on_tick(secs(1000.0))
            .iter()
            .all(|t| t.hadd == other),
        "offline nodes are not timed out"
    );
}

#[test]
fn the_default_period_applies_until_the_node_tells_its_own() {
    let mut liveness = Liveness::new(LivenessConfig::default());
    liveness.on_heartbeat(NODE, NodeState::Online, secs(0.0));
    assert!(
        liveness.on_tick(secs(98.9)).is_empty(),
        "30 s default, 3 periods of 33 s"
    );
    assert_eq!(
        states(&liveness.on_tick(secs(99.0))),
        [(NODE, NodeState::Pending)]
    );
}

#[test]
fn a_longer_period_learned_at_run_time_is_waited_for() {
    let mut liveness = watched(30.0);
    assert!(liveness.set_period(NODE, secs(3000.0), secs(10.0)));
    assert!(
        liveness.on_tick(secs(200.0)).is_empty(),
        "no PENDING at 99 s"
    );
    assert!(liveness.on_tick(secs(9_000.0)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(9_911.0))),
        [(NODE, NodeState::Pending)]
    );
}

#[test]
fn a_shorter_period_restarts_the_window_instead_of_failing_the_node_at_once() {
    let mut liveness = watched(20.0);
    // 15 s after its last beat the node is told 2 s; the liveness learns it at once.
    liveness.set_period(NODE, secs(2.0), secs(15.0));
    assert!(liveness.on_tick(secs(15.1)).is_empty());
    assert!(liveness.on_tick(secs(21.5)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(21.7))),
        [(NODE, NodeState::Pending)],
        "3 periods of 2.2 s after the change"
    );
}

#[test]
fn periods_out_of_range_or_unchanged_are_ignored() {
    let mut liveness = watched(10.0);
    assert!(!liveness.set_period(NODE, secs(10.0), secs(1.0)));
    assert!(!liveness.set_period(NODE, Duration::ZERO, secs(1.0)));
    assert!(!liveness.set_period(NODE, secs(3001.0), secs(1.0)));
    assert_eq!(liveness.period(NODE), secs(10.0));
}

#[test]
fn after_a_reconnection_nodes_get_a_full_window_and_time_to_come_back() {
    let mut liveness = watched(1.0);
    let slow = Hadd::new(221, 1);
    liveness.set_period(slow, secs(30.0), secs(0.0));
    liveness.on_heartbeat(slow, NodeState::Online, secs(0.0));
    // Disconnected from 1 s to 61 s: no tick meanwhile, then the windows restart.
    liveness.restart_windows(secs(61.0), secs(71.0));
    assert!(liveness.on_tick(secs(70.9)).is_empty(), "time to come back");
    assert_eq!(
        states(&liveness.on_tick(secs(71.0))),
        [(NODE, NodeState::Pending)]
    );
    assert!(liveness.on_tick(secs(74.2)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(74.3))),
        [(NODE, NodeState::Failed)]
    );
    assert!(liveness.on_tick(secs(159.9)).is_empty(), "99 s after 61 s");
    assert_eq!(
        states(&liveness.on_tick(secs(160.0))),
        [(slow, NodeState::Pending)]
    );
}

#[test]
fn a_pending_node_keeps_its_missed_periods_across_a_reconnection() {
    let mut liveness = watched(10.0);
    assert_eq!(
        states(&liveness.on_tick(secs(33.0))),
        [(NODE, NodeState::Pending)]
    );
    liveness.restart_windows(secs(50.0), secs(50.0));
    assert!(liveness.on_tick(secs(82.9)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(83.0))),
        [(NODE, NodeState::Failed)]
    );
}

#[test]
fn a_state_adopted_from_the_primary_is_timed_from_when_it_was_learned() {
    let mut liveness = Liveness::new(LivenessConfig::default());
    liveness.set_period(NODE, secs(1.0), secs(0.0));
    liveness.adopt(NODE, NodeState::Online, secs(100.0));
    liveness.adopt(Hadd::new(9, 9), NodeState::Unknown, secs(100.0));
    assert_eq!(liveness.states().count(), 1);
    assert!(liveness.on_tick(secs(103.2)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(103.3))),
        [(NODE, NodeState::Pending)]
    );
    liveness.on_heartbeat(NODE, NodeState::Online, secs(104.0));
    liveness.adopt(NODE, NodeState::Failed, secs(104.0));
    assert_eq!(liveness.state(NODE), NodeState::Online, "its own beat wins");
}

#[test]
fn a_pause_of_the_listener_is_not_counted_as_silence() {
    let mut liveness = watched(1.0);
    assert!(liveness.on_tick(secs(2.0)).is_empty());
    liveness.discount(secs(30.0), secs(32.0));
    assert!(
        liveness.on_tick(secs(33.2)).is_empty(),
        "2 s heard, 30 s paused"
    );
    assert_eq!(
        states(&liveness.on_tick(secs(33.3))),
        [(NODE, NodeState::Pending)]
    );
}

#[test]
fn a_pause_noticed_after_a_reconnection_does_not_push_windows_further() {
    let mut liveness = watched(1.0);
    // Thawed at 30 s: the reconnection is noticed first, then the 28 s pause.
    liveness.restart_windows(secs(30.0), secs(40.0));
    liveness.discount(secs(28.0), secs(30.0));
    assert!(liveness.on_tick(secs(39.9)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(40.0))),
        [(NODE, NodeState::Pending)]
    );
}

#[test]
fn a_period_told_second_hand_never_overrides_the_nodes_own() {
    let mut liveness = watched(20.0);
    assert!(!liveness.suggest_period(NODE, secs(1.0), secs(1.0)));
    assert_eq!(liveness.period(NODE), secs(20.0));
    let other = Hadd::new(221, 1);
    assert!(liveness.suggest_period(other, secs(5.0), secs(1.0)));
    assert_eq!(liveness.period(other), secs(5.0));
}

#[test]
fn a_failed_node_is_dead_only_after_six_more_silent_periods_past_a_restart() {
    let mut liveness = Liveness::new(LivenessConfig {
        dead_after: secs(60.0),
        ..LivenessConfig::default()
    });
    liveness.set_period(NODE, secs(1.0), secs(0.0));
    liveness.on_heartbeat(NODE, NodeState::Online, secs(0.0));
    liveness.on_tick(secs(10.0));
    assert_eq!(liveness.state(NODE), NodeState::Failed);
    liveness.restart_windows(secs(100.0), secs(100.0));
    assert!(liveness.on_tick(secs(106.5)).is_empty(), "5 missed periods");
    assert_eq!(
        states(&liveness.on_tick(secs(106.6))),
        [(NODE, NodeState::Dead)]
    );
}

#[test]
fn after_an_absence_a_longer_period_from_the_primarys_map_is_believed_until_the_node_speaks() {
    let mut liveness = watched(2.0);
    // Present all along: the node's own word wins over a map's.
    assert!(!liveness.suggest_period(NODE, secs(10.0), secs(1.0)));
    assert_eq!(liveness.period(NODE), secs(2.0));
    // Away (a reconnection): the node may have changed its period meanwhile.
    liveness.restart_windows(secs(20.0), secs(21.0));
    assert!(
        !liveness.suggest_period(NODE, secs(1.0), secs(21.0)),
        "shorter: not believed"
    );
    assert!(liveness.suggest_period(NODE, secs(10.0), secs(21.0)));
    assert_eq!(liveness.period(NODE), secs(10.0));
    // 3 tolerant periods of 2 s would make it PENDING at 27.6 s; of 10 s, not before 54 s.
    liveness.on_heartbeat(NODE, NodeState::Online, secs(22.0));
    assert!(liveness.on_tick(secs(40.0)).is_empty());
    // The node tells its own: believed, and maps are second hand again.
    liveness.set_period(NODE, secs(3.0), secs(41.0));
    assert!(!liveness.suggest_period(NODE, secs(20.0), secs(42.0)));
    assert_eq!(liveness.period(NODE), secs(3.0));
    // A pause of the process makes periods doubtful too.
    liveness.discount(secs(5.0), secs(50.0));
    assert!(liveness.suggest_period(NODE, secs(20.0), secs(50.0)));
}

#[test]
fn a_silence_judged_with_a_period_the_node_then_says_was_longer_is_withdrawn() {
    // Believed 2 s (a change to 20 s missed while away): PENDING at 6.6 s of silence.
    let mut liveness = watched(2.0);
    liveness.on_tick(secs(6.6));
    assert_eq!(liveness.state(NODE), NodeState::Pending);
    // The node says 20 s: 8 s of silence is not 3 tolerant periods of it.
    assert!(liveness.set_period(NODE, secs(20.0), secs(8.0)));
    assert_eq!(liveness.state(NODE), NodeState::Online);
    // From then on it is judged with the new period, its window from the answer.
    assert!(liveness.on_tick(secs(73.9)).is_empty());
    assert_eq!(
        states(&liveness.on_tick(secs(74.0))),
        [(NODE, NodeState::Pending)]
    );
}

#[test]
fn a_longer_period_judges_the_silence_since_the_last_heartbeat_again_only_backwards() {
    // Silent 70 s: FAILED with 2 s; with 20 s, between 3 and 6 tolerant periods: PENDING.
    let mut liveness = watched(2.0);
    liveness.on_tick(secs(70.0));
    assert_eq!(liveness.state(NODE), NodeState::Failed);
    liveness.set_period(NODE, secs(20.0), secs(70.0));
    assert_eq!(liveness.state(NODE), NodeState::Pending);
    // Exactly 3 tolerant periods of the new one (66 s): PENDING, not ONLINE.
    let mut liveness = watched(2.0);
    liveness.on_tick(secs(66.0));
    liveness.set_period(NODE, secs(20.0), secs(66.0));
    assert_eq!(liveness.state(NODE), NodeState::Pending);
    // ... and judged again if it says longer still: 71 s is not 3 tolerant periods of 40 s.
    liveness.set_period(NODE, secs(40.0), secs(71.0));
    assert_eq!(liveness.state(NODE), NodeState::Online);
    // Silent 132 s (exactly 6 tolerant periods of 20 s) or more: FAILED either way.
    for silent in [132.0, 140.0] {
        let mut liveness = watched(2.0);
        liveness.on_tick(secs(silent));
        liveness.set_period(NODE, secs(20.0), secs(silent));
        assert_eq!(liveness.state(NODE), NodeState::Failed, "silent {silent} s");
    }
    // FAILED within the new patience: ONLINE.
    let mut liveness = watched(2.0);
    liveness.on_tick(secs(14.0));
    assert_eq!(liveness.state(NODE), NodeState::Failed);
    liveness.set_period(NODE, secs(20.0), secs(14.0));
    assert_eq!(liveness.state(NODE), NodeState::Online);
    // Silence counts from the last heartbeat, not from a window restarted since (a
    // reconnection, a period told in between).
    let mut liveness = watched(2.0);
    liveness.on_tick(secs(100.0));
    liveness.restart_windows(secs(100.0), secs(110.0));
    assert!(liveness.suggest_period(NODE, secs(20.0), secs(101.0)));
    assert_eq!(liveness.state(NODE), NodeState::Pending, "silent 101 s");
    let mut liveness = watched(2.0);
    liveness.on_tick(secs(14.0));
    liveness.set_period(NODE, secs(3.0), secs(14.0));
    assert_eq!(
        liveness.state(NODE),
        NodeState::Pending,
        "14 s of 3 s periods"
    );
    liveness.set_period(NODE, secs(4.0), secs(15.0));
    assert_eq!(
        liveness.state(NODE),
        NodeState::Pending,
        "15 s of 4 s periods"
    );
    // A shorter period withdraws nothing.
    let mut liveness = watched(2.0);
    liveness.on_tick(secs(7.0));
    liveness.set_period(NODE, secs(1.0), secs(7.0));
    assert_eq!(liveness.state(NODE), NodeState::Pending);
    // PENDING reported by the node itself is its own word.
    let mut liveness = watched(2.0);
    liveness.on_heartbeat(NODE, NodeState::Pending, secs(1.0));
    liveness.set_period(NODE, secs(20.0), secs(2.0));
    assert_eq!(liveness.state(NODE), NodeState::Pending);
    // Nor is a state adopted from the primary's map.
    let other = Hadd::new(221, 1);
    liveness.adopt(other, NodeState::Pending, secs(2.0));
    liveness.set_period(other, secs(20.0), secs(3.0));
    assert_eq!(liveness.state(other), NodeState::Pending);
}
