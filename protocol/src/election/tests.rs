use super::*;

const A: Hadd = Hadd::new(1, 0);
const B: Hadd = Hadd::new(2, 0);
const C: Hadd = Hadd::new(3, 0);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn rank(role: Role, priority: u8) -> Rank {
    Rank { role, priority }
}

fn epoch_of(round: u64, hadd: Hadd) -> u64 {
    (round << 16) | u64::from(hadd.ctrl)
}

/// A controller started and connected at `at`.
fn election(me: Hadd, rank: Rank, at: u64) -> Election {
    let mut election = Election::new(me, rank, ElectionConfig::default(), ms(at));
    election.on_connected(ms(at));
    election
}

/// A controller of a keyed network (an OFFLINE reaching it was signed), started and connected
/// at `at`.
fn keyed(me: Hadd, rank: Rank, at: u64) -> Election {
    let config = ElectionConfig {
        offline_signed: true,
        ..ElectionConfig::default()
    };
    let mut election = Election::new(me, rank, config, ms(at));
    election.on_connected(ms(at));
    election
}

fn became_primary(actions: &[ElectionAction]) -> Option<u64> {
    actions.iter().find_map(|action| match action {
        ElectionAction::BecomePrimary { epoch } => Some(*epoch),
        _ => None,
    })
}

fn sends_heartbeat(actions: &[ElectionAction]) -> bool {
    actions
        .iter()
        .any(|action| matches!(action, ElectionAction::SendPrimaryHeartbeat { .. }))
}

/// A primary of round 1 after its first claim at 3 s.
fn lone_primary() -> (Election, u64) {
    let mut primary = election(A, rank(Role::Auto, 0), 0);
    let epoch = became_primary(&primary.on_tick(ms(3_000))).unwrap();
    (primary, epoch)
}

#[test]
fn a_lone_controller_claims_after_listening() {
    let mut lone = Election::new(A, rank(Role::Auto, 0), ElectionConfig::default(), ms(0));
    assert!(
        lone.on_tick(ms(5_000)).is_empty(),
        "never before it is connected"
    );
    lone.on_connected(ms(5_000));
    assert_eq!(became_primary(&lone.on_tick(ms(7_900))), None);
    let epoch = became_primary(&lone.on_tick(ms(8_000))).unwrap();
    assert_eq!((round_of(epoch), epoch & 0xffff), (1, 1));
    assert_eq!(lone.acting_epoch(ms(8_000)), Some(epoch));
    assert!(lone
        .on_tick(ms(9_000))
        .contains(&ElectionAction::SendPrimaryHeartbeat { epoch }));
}

#[test]
fn a_live_primary_is_followed_and_never_challenged() {
    let mut follower = election(B, rank(Role::Primary, 9), 0);
    let epoch = epoch_of(5, A);
    assert_eq!(
        follower.on_primary_heartbeat(A, Some(epoch), ms(0)),
        [ElectionAction::Following { primary: A, epoch }]
    );
    for second in 1..10 {
        assert!(follower
            .on_primary_heartbeat(A, Some(epoch), ms(second * 1000))
            .is_empty());
        assert_eq!(
            became_primary(&follower.on_tick(ms(second * 1000 + 500))),
            None
        );
    }
    assert_eq!(
        follower.standing(),
        Standing::Follower {
            primary: Some((A, epoch))
        }
    );
    assert_eq!(follower.acting_epoch(ms(9_999)), None);
}

#[test]
fn the_best_secondary_takes_over_a_silent_primary_with_a_higher_epoch() {
    let mut best = election(B, rank(Role::Secondary, 5), 0);
    let mut other = election(C, rank(Role::Secondary, 1), 0);
    for each in [&mut best, &mut other] {
        each.on_candidate(B, rank(Role::Secondary, 5), ms(0));
        each.on_candidate(C, rank(Role::Secondary, 1), ms(0));
        each.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_000));
    }
    // The primary falls silent after 3 s; lost after 3 more intervals. Ticks off the grid.
    let mut claimed = Vec::new();
    for now in (3_037..=8_000).step_by(97) {
        for each in [&mut best, &mut other] {
            each.on_candidate(B, rank(Role::Secondary, 5), ms(now));
            each.on_candidate(C, rank(Role::Secondary, 1), ms(now));
            if let Some(epoch) = became_primary(&each.on_tick(ms(now))) {
                claimed.push((each.me, epoch, now));
            }
        }
        if let Some((_, epoch, _)) = claimed.first() {
            other.on_primary_heartbeat(B, Some(*epoch), ms(now));
        }
    }
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let (who, epoch, at) = claimed[0];
    assert_eq!((who, round_of(epoch)), (B, 2));
    assert!((6_000..=6_100).contains(&at), "claimed at {at} ms");
    assert!(!other.is_primary());
}

#[test]
fn a_primary_silent_for_just_the_limit_is_not_lost_yet() {
    let mut secondary = election(B, rank(Role::Secondary, 0), 0);
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_000));
    let actions = secondary.on_tick(ms(6_000));
    assert!(
        became_primary(&actions).is_none()
            && !actions.contains(&ElectionAction::PrimaryLost { primary: Some(A) }),
        "exactly 3 s of silence: {actions:?}"
    );
    let actions = secondary.on_tick(ms(6_001));
    assert_eq!(actions[0], ElectionAction::PrimaryLost { primary: Some(A) });
    assert!(became_primary(&actions).is_some());
}

#[test]
fn a_stale_candidate_ranked_above_does_not_delay_the_takeover() {
    let mut secondary = keyed(C, rank(Role::Secondary, 0), 0);
    // B outranks C but stopped announcing long ago.
    secondary.on_candidate(B, rank(Role::Primary, 9), ms(100));
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_000));
    secondary.on_tick(ms(3_000));
    assert_eq!(
        secondary.on_candidate_lost(A, ms(5_000)),
        [ElectionAction::PrimaryLost { primary: Some(A) }]
    );
    assert!(
        became_primary(&secondary.on_tick(ms(5_000))).is_some(),
        "B is stale: C's turn is now"
    );
}

#[test]
fn a_live_candidate_ranked_above_goes_first() {
    let mut secondary = keyed(C, rank(Role::Secondary, 0), 0);
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_000));
    secondary.on_candidate(B, rank(Role::Primary, 9), ms(4_900));
    secondary.on_candidate_lost(A, ms(5_000));
    assert_eq!(became_primary(&secondary.on_tick(ms(5_000))), None);
    assert_eq!(became_primary(&secondary.on_tick(ms(5_999))), None);
    assert!(became_primary(&secondary.on_tick(ms(6_000))).is_some());
}

#[test]
fn a_signed_last_will_starts_the_takeover_at_once() {
    let mut secondary = keyed(B, rank(Role::Secondary, 0), 0);
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_500));
    secondary.on_tick(ms(3_600));
    assert!(
        secondary.on_candidate_lost(C, ms(3_650)).is_empty(),
        "not the primary"
    );
    secondary.on_candidate_lost(A, ms(3_700));
    assert!(became_primary(&secondary.on_tick(ms(3_700))).is_some());
}

/// Issue 21: unkeyed, one forged OFFLINE moved the primary for good.
#[test]
fn unkeyed_the_primarys_offline_is_believed_only_if_it_does_not_beat_within_half_an_interval() {
    // A real crash: nobody refutes, the takeover starts 3/10 of an interval later.
    let mut secondary = election(B, rank(Role::Secondary, 0), 0);
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_500));
    secondary.on_tick(ms(3_600));
    assert_eq!(
        secondary.on_candidate_lost(A, ms(3_700)),
        [ElectionAction::OfflineDoubted { primary: A }]
    );
    assert_eq!(became_primary(&secondary.on_tick(ms(3_999))), None);
    let actions = secondary.on_tick(ms(4_000));
    assert_eq!(actions[0], ElectionAction::PrimaryLost { primary: Some(A) });
    assert!(became_primary(&actions).is_some());

    // Forged: the live primary beats within the half interval, and stays primary.
    let mut secondary = election(B, rank(Role::Secondary, 0), 0);
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_500));
    secondary.on_candidate_lost(A, ms(3_700));
    assert!(
        secondary.on_candidate_lost(A, ms(3_750)).is_empty(),
        "doubted once"
    );
    assert_eq!(
        secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_720)),
        [ElectionAction::OfflineRefuted { primary: A }]
    );
    for at in (3_800..=6_000).step_by(100) {
        let actions = secondary.on_tick(ms(at));
        assert!(
            !actions.contains(&ElectionAction::PrimaryLost { primary: Some(A) })
                && became_primary(&actions).is_none(),
            "at {at} ms: {actions:?}"
        );
        if at % 1_000 == 0 {
            secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(at));
        }
    }
    assert_eq!(
        secondary.standing(),
        Standing::Follower {
            primary: Some((A, epoch_of(1, A)))
        }
    );
    // An OFFLINE of a controller that is not the primary is not doubted: a peer gone.
    assert!(secondary.on_candidate_lost(C, ms(6_050)).is_empty());
}

#[test]
fn a_primary_refutes_an_offline_in_its_name_at_once_and_again_at_most_every_tenth_interval() {
    let (mut primary, epoch) = lone_primary();
    let beat = [ElectionAction::SendPrimaryHeartbeat { epoch }];
    assert_eq!(primary.on_candidate_lost(A, ms(3_100)), beat);
    for at in [3_101, 3_150, 3_199] {
        assert!(primary.on_candidate_lost(A, ms(at)).is_empty(), "{at}");
    }
    // Again a tenth of an interval later, for a follower that heard the OFFLINE after the
    // first.
    assert!(primary.on_tick(ms(3_199)).is_empty());
    assert_eq!(primary.on_tick(ms(3_200)), beat);
    assert!(primary.on_tick(ms(3_300)).is_empty());
    // A flood of OFFLINEs costs a heartbeat per tenth of an interval.
    let mut beats = 0;
    for at in (3_300..4_000).step_by(10) {
        beats += primary.on_candidate_lost(A, ms(at)).len();
        beats += primary.on_tick(ms(at)).len();
    }
    assert_eq!(beats, 7, "3_300, 3_400, ..., 3_900");
    assert!(primary.is_primary());
    // Held after an absence, it says nothing.
    primary.on_resumed(ms(34_000), ms(30_000));
    assert!(primary.on_candidate_lost(A, ms(34_000)).is_empty());
    // Nor does a follower.
    let mut follower = election(B, rank(Role::Secondary, 0), 0);
    follower.on_primary_heartbeat(A, Some(epoch), ms(500));
    assert!(follower.on_candidate_lost(B, ms(600)).is_empty());
}

#[test]
fn a_primary_that_hears_a_higher_epoch_steps_down_and_lower_epochs_are_fenced() {
    let (mut old, epoch) = lone_primary();
    let newer = epoch_of(round_of(epoch) + 1, B);
    old.on_candidate(B, rank(Role::Secondary, 0), ms(3_900));
    assert_eq!(
        old.on_primary_heartbeat(B, Some(newer), ms(4_000)),
        [
            ElectionAction::StepDown {
                primary: B,
                epoch: newer
            },
            ElectionAction::Following {
                primary: B,
                epoch: newer
            }
        ]
    );
    assert_eq!(
        old.on_primary_heartbeat(C, Some(epoch_of(1, C)), ms(4_100)),
        [ElectionAction::Fenced {
            from: C,
            epoch: epoch_of(1, C)
        }]
    );
    assert!(!old.is_primary());
    assert_eq!(old.epoch(), newer);
}

#[test]
fn a_forged_epoch_is_refused_and_claims_never_wrap() {
    let mut secondary = election(B, rank(Role::Secondary, 0), 0);
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(0));
    let actions = secondary.on_primary_heartbeat(C, Some(u64::MAX), ms(100));
    assert!(matches!(
        actions[..],
        [ElectionAction::Forged { from: C, .. }]
    ));
    assert_eq!(secondary.epoch(), epoch_of(1, A));
    secondary.on_candidate_lost(A, ms(200));
    let epoch = became_primary(&secondary.on_tick(ms(3_000))).unwrap();
    assert_eq!(epoch, epoch_of(2, B), "the next round, not a wrapped one");
}

#[test]
fn a_controller_unfrozen_after_a_long_pause_listens_before_claiming() {
    let mut frozen = election(B, rank(Role::Secondary, 0), 0);
    frozen.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_000));
    frozen.on_tick(ms(3_000));
    // No tick for 20 s (SIGSTOP), then the first tick: stale knowledge is not a loss.
    assert!(frozen.on_resumed(ms(23_000), ms(20_000)).is_empty());
    assert_eq!(became_primary(&frozen.on_tick(ms(23_000))), None);
    frozen.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(23_500));
    assert_eq!(became_primary(&frozen.on_tick(ms(26_000))), None);
}

#[test]
fn a_primary_back_from_a_long_pause_holds_its_epoch_until_it_has_heard_the_network() {
    let (mut primary, epoch) = lone_primary();
    primary.on_tick(ms(4_000));
    assert_eq!(
        primary.on_resumed(ms(34_000), ms(30_000)),
        [ElectionAction::Hold { epoch }]
    );
    assert_eq!(primary.acting_epoch(ms(34_000)), None);
    assert!(!sends_heartbeat(&primary.on_tick(ms(34_000))));
    assert!(!sends_heartbeat(&primary.on_tick(ms(35_500))));
    // A takeover happened meanwhile: it steps down without having said anything.
    let newer = epoch_of(2, C);
    let actions = primary.on_primary_heartbeat(C, Some(newer), ms(35_600));
    assert_eq!(
        actions[0],
        ElectionAction::StepDown {
            primary: C,
            epoch: newer
        }
    );
    assert_eq!(primary.acting_epoch(ms(40_000)), None);
}

#[test]
fn a_primary_nobody_replaced_resumes_after_its_hold() {
    let (mut primary, epoch) = lone_primary();
    assert!(
        primary.on_resumed(ms(5_000), ms(2_000)).is_empty(),
        "short pause"
    );
    assert_eq!(primary.acting_epoch(ms(5_000)), Some(epoch));
    primary.on_resumed(ms(20_000), ms(15_000));
    assert_eq!(primary.acting_epoch(ms(21_999)), None);
    assert_eq!(
        primary.acting_epoch(ms(22_000)),
        Some(epoch),
        "the hold ends on time"
    );
    let actions = primary.on_tick(ms(22_000));
    assert_eq!(actions[0], ElectionAction::Resume { epoch });
    assert!(sends_heartbeat(&actions));
    assert_eq!(primary.acting_epoch(ms(22_000)), Some(epoch));
}

#[test]
fn a_disconnected_controller_never_claims_and_listens_for_the_rejoin_delay() {
    let mut cut_off = election(B, rank(Role::Primary, 0), 0);
    cut_off.on_disconnected();
    assert!(cut_off.on_tick(ms(10_000)).is_empty());
    cut_off.on_connected(ms(10_000));
    assert_eq!(
        became_primary(&cut_off.on_tick(ms(19_999))),
        None,
        "listens while the others come back"
    );
    assert!(became_primary(&cut_off.on_tick(ms(20_000))).is_some());
}

#[test]
fn a_reconnected_primary_holds_its_epoch_and_publishes_nothing_meanwhile() {
    let (mut primary, epoch) = lone_primary();
    primary.on_disconnected();
    assert_eq!(primary.acting_epoch(ms(4_000)), None);
    assert!(primary.on_tick(ms(4_000)).is_empty());
    assert_eq!(
        primary.on_connected(ms(9_000)),
        [ElectionAction::Hold { epoch }]
    );
    assert!(primary.on_tick(ms(10_000)).is_empty());
    assert_eq!(
        primary.on_tick(ms(11_000))[0],
        ElectionAction::Resume { epoch }
    );
}

#[test]
fn a_short_pause_of_a_secondary_is_not_the_primarys_silence() {
    let mut secondary = election(B, rank(Role::Secondary, 0), 0);
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(3_000));
    secondary.on_tick(ms(3_100));
    // Paused from 3.1 s to 5.9 s; the primary's heartbeats wait in the socket meanwhile.
    assert!(secondary.on_resumed(ms(5_900), ms(2_800)).is_empty());
    let actions = secondary.on_tick(ms(6_100));
    assert_eq!(became_primary(&actions), None, "{actions:?}");
    secondary.on_primary_heartbeat(A, Some(epoch_of(1, A)), ms(6_110));
    assert_eq!(became_primary(&secondary.on_tick(ms(8_000))), None);
}

#[test]
fn of_two_claims_in_one_round_the_lower_is_fenced() {
    let mut higher = election(C, rank(Role::Auto, 0), 0);
    let epoch = became_primary(&higher.on_tick(ms(3_000))).unwrap();
    assert_eq!(epoch, epoch_of(1, C));
    let lower = epoch_of(1, B);
    assert_eq!(
        higher.on_primary_heartbeat(B, Some(lower), ms(3_010)),
        [ElectionAction::Fenced {
            from: B,
            epoch: lower
        }]
    );
    assert!(higher.is_primary());
}
