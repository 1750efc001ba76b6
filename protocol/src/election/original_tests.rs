//! The election beside the original's primary (`janitoo_dhcp`): a resolv heartbeat without epoch,
//! every 15 s in its sample configuration, from a primary that never steps down.

use super::*;

const ORIGINAL: Hadd = Hadd::new(1, 0);
const B: Hadd = Hadd::new(2, 0);
const C: Hadd = Hadd::new(3, 0);

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

fn our_controller(me: Hadd, config: ElectionConfig, at: Duration) -> Election {
    let mut election = Election::new(
        me,
        Rank {
            role: Role::Secondary,
            priority: 5,
        },
        config,
        at,
    );
    election.on_connected(at);
    election
}

/// A controller told that an original primary may run here.
fn beside_original() -> ElectionConfig {
    ElectionConfig {
        original_primary: true,
        ..ElectionConfig::default()
    }
}

fn claimed(actions: &[ElectionAction]) -> bool {
    actions
        .iter()
        .any(|action| matches!(action, ElectionAction::BecomePrimary { .. }))
}

/// Runs `election` from `from` to `to` (ticks every 100 ms), with the original beating at
/// every multiple of `cadence` in `beats`; returns when it claimed, if it did.
fn run(
    election: &mut Election,
    from: Duration,
    to: Duration,
    cadence: Duration,
    beats: std::ops::Range<Duration>,
) -> Option<Duration> {
    let tick = Duration::from_millis(100);
    let mut now = from;
    while now < to {
        let next_beat = cadence * u32::try_from(now.as_millis() / cadence.as_millis()).unwrap();
        if now == next_beat && beats.contains(&now) {
            election.on_primary_heartbeat(ORIGINAL, None, now);
        }
        if claimed(&election.on_tick(now)) {
            return Some(now);
        }
        now += tick;
    }
    None
}

#[test]
fn an_original_primary_beating_every_15_s_is_never_challenged() {
    let mut ours = our_controller(B, ElectionConfig::default(), secs(0));
    assert_eq!(
        ours.on_primary_heartbeat(ORIGINAL, None, secs(0)),
        [ElectionAction::Following {
            primary: ORIGINAL,
            epoch: 0
        }]
    );
    let claim = run(&mut ours, secs(0), secs(600), secs(15), secs(0)..secs(600));
    assert_eq!(claim, None, "no claim while it beats, for ten minutes");
    assert_eq!(ours.original_cadence(), secs(15));
}

#[test]
fn a_silent_original_primary_is_taken_over_after_three_of_its_periods() {
    let mut ours = our_controller(B, ElectionConfig::default(), secs(0));
    // It beats at 0, 15, ..., 105; its last heartbeat is at 105 s.
    let claim = run(&mut ours, secs(0), secs(300), secs(15), secs(0)..secs(106)).unwrap();
    let after_last = claim - secs(105);
    assert!(
        after_last > secs(45) && after_last <= secs(46),
        "taken over {after_last:?} after the last heartbeat: three periods of 15 s"
    );
    let epoch = ours.acting_epoch(claim).unwrap();
    assert_eq!(round_of(epoch), 1, "the round after the highest ever seen");
}

#[test]
fn the_originals_cadence_is_learned_from_what_it_sends() {
    let mut ours = our_controller(B, ElectionConfig::default(), secs(0));
    // A `resolv_timeout` of 5 s: learned after three gaps, so lost after 15 s of silence.
    let claim = run(&mut ours, secs(0), secs(120), secs(5), secs(0)..secs(61)).unwrap();
    assert_eq!(ours.original_cadence(), Duration::from_secs(5));
    let after_last = claim - secs(60);
    assert!(
        after_last > secs(15) && after_last <= secs(16),
        "{after_last:?}"
    );

    // A slow one (60 s): until three gaps are known, 15 s is assumed, so it is taken over and
    // followed again when it repeats itself; once learned, it is never challenged. A duplicate
    // heartbeat is no gap.
    let mut ours = our_controller(C, beside_original(), secs(0));
    let mut claims = Vec::new();
    let mut now = Duration::ZERO;
    while now < secs(900) {
        if now.as_millis() % 60_000 == 0 {
            ours.on_primary_heartbeat(ORIGINAL, None, now);
            ours.on_primary_heartbeat(ORIGINAL, None, now + Duration::from_millis(20));
        }
        if claimed(&ours.on_tick(now)) {
            claims.push(now.as_secs());
        }
        now += Duration::from_millis(100);
    }
    assert_eq!(ours.original_cadence(), secs(60));
    assert!(
        claims.iter().all(|at| *at < 180),
        "claims at {claims:?}: none once three gaps are known"
    );
    assert_eq!(
        ours.standing(),
        Standing::Follower {
            primary: Some((ORIGINAL, 0))
        }
    );
}

#[test]
fn a_mixed_network_controller_hears_the_original_before_it_may_claim() {
    let mixed = beside_original();
    // It starts 2 s after one of the original's heartbeats: the next comes 13 s later.
    let mut ours = our_controller(B, mixed, secs(2));
    let claim = run(&mut ours, secs(2), secs(120), secs(15), secs(15)..secs(120));
    assert_eq!(claim, None);
    assert_eq!(
        ours.standing(),
        Standing::Follower {
            primary: Some((ORIGINAL, 0))
        }
    );

    // Without `mixed`, it claims 3 s after its start, before hearing it.
    let mut unaware = our_controller(C, ElectionConfig::default(), secs(2));
    let claim = run(
        &mut unaware,
        secs(2),
        secs(120),
        secs(15),
        secs(15)..secs(120),
    );
    assert_eq!(claim, Some(secs(5)));
}

#[test]
fn a_primary_of_ours_steps_down_to_an_original_heard_twice() {
    // It heard nothing for 16 s (one of the original's periods and one of ours): it claims.
    let mut ours = our_controller(B, beside_original(), secs(0));
    assert!(!claimed(&ours.on_tick(secs(15))));
    assert!(claimed(&ours.on_tick(secs(16))));
    let epoch = ours.acting_epoch(secs(16)).unwrap();
    assert_eq!(
        ours.on_primary_heartbeat(ORIGINAL, None, secs(17)),
        [ElectionAction::Unconfirmed {
            from: ORIGINAL,
            epoch: 0
        }],
        "a single message moves nothing"
    );
    assert!(ours.is_primary());
    assert_eq!(
        ours.on_primary_heartbeat(ORIGINAL, None, secs(32)),
        [
            ElectionAction::StepDown {
                primary: ORIGINAL,
                epoch: 0
            },
            ElectionAction::Following {
                primary: ORIGINAL,
                epoch: 0
            }
        ]
    );
    assert_eq!(ours.acting_epoch(secs(32)), None);
    assert_eq!(ours.epoch(), epoch, "the highest epoch stays");
    // When it stops for good, the next claim is a round above ours.
    let claim = run(&mut ours, secs(33), secs(200), secs(15), secs(0)..secs(0)).unwrap();
    assert!(claim > secs(32 + 45), "{claim:?}");
    assert_eq!(round_of(ours.acting_epoch(claim).unwrap()), 2);
}

#[test]
fn a_stray_epoch_less_heartbeat_moves_nothing() {
    let mut ours = our_controller(C, beside_original(), secs(0));
    ours.on_primary_heartbeat(ORIGINAL, None, secs(0));
    // A stray epoch-less heartbeat from another address is not followed on its own.
    assert_eq!(
        ours.on_primary_heartbeat(B, None, secs(1)),
        [ElectionAction::Unconfirmed { from: B, epoch: 0 }]
    );
    assert_eq!(
        ours.standing(),
        Standing::Follower {
            primary: Some((ORIGINAL, 0))
        }
    );
}

#[test]
fn where_no_original_may_run_an_epoch_less_heartbeat_is_stale_once_epochs_are_seen() {
    let mut ours = our_controller(B, ElectionConfig::default(), secs(0));
    assert!(claimed(&ours.on_tick(secs(3))));
    for at in [10, 25, 40] {
        assert_eq!(
            ours.on_primary_heartbeat(ORIGINAL, None, secs(at)),
            [ElectionAction::Fenced {
                from: ORIGINAL,
                epoch: 0
            }]
        );
    }
    assert!(ours.is_primary(), "a stranger cannot pose as the original");
}

#[test]
fn beside_an_original_no_claim_while_it_beats_even_unconfirmed_and_at_once_after_its_offline() {
    // Following a primary of ours when the original (back) beats once: ours dies meanwhile.
    let mut ours = our_controller(C, beside_original(), secs(0));
    let epoch = (1 << 16) | 2;
    ours.on_primary_heartbeat(B, Some(epoch), secs(17));
    ours.on_primary_heartbeat(ORIGINAL, None, secs(18));
    ours.on_candidate_lost(B, secs(19));
    let claim = run(&mut ours, secs(19), secs(120), secs(15), secs(0)..secs(0)).unwrap();
    assert!(
        claim > secs(18 + 45),
        "claimed at {claim:?} while the original beat"
    );

    // Its OFFLINE (a clean stop) ends its claim to the role at once.
    let mut ours = our_controller(B, beside_original(), secs(0));
    ours.on_primary_heartbeat(ORIGINAL, None, secs(1));
    ours.on_primary_heartbeat(ORIGINAL, None, secs(16));
    // Unkeyed, doubted for half an interval (the original never refutes).
    assert_eq!(
        ours.on_candidate_lost(ORIGINAL, secs(20)),
        [ElectionAction::OfflineDoubted { primary: ORIGINAL }]
    );
    let claim = run(&mut ours, secs(20), secs(60), secs(15), secs(0)..secs(0)).unwrap();
    assert!(claim <= secs(21), "{claim:?}");
}

#[test]
fn the_cadence_is_learned_from_one_sender_at_a_time_and_afresh_after_an_absence() {
    let ms = Duration::from_millis;
    let shortest = secs(1);
    let mut cadence = OriginalCadence::default();
    for at in [0, 5, 10, 15] {
        cadence.heard(ORIGINAL, secs(at), shortest);
    }
    assert_eq!(cadence.cadence(secs(15)), secs(5));
    // Another sender starts its own count: until it has three gaps, the period is assumed.
    cadence.heard(B, secs(16), shortest);
    assert_eq!(cadence.cadence(secs(15)), secs(15));
    for at in [17, 18, 19] {
        cadence.heard(B, secs(at), shortest);
    }
    assert_eq!(
        cadence.cadence(secs(15)),
        secs(1),
        "a gap of exactly the shortest counts"
    );
    // A duplicate is no gap.
    cadence.heard(B, secs(19) + ms(300), shortest);
    assert_eq!(cadence.cadence(secs(15)), secs(1));
    assert_eq!(cadence.last, Some((B, secs(19))));

    // After our absence, a beat that waited in the socket measures nothing.
    let mut cadence = OriginalCadence::default();
    for at in [0, 15, 30, 45] {
        cadence.heard(ORIGINAL, secs(at), shortest);
    }
    cadence.away();
    assert_eq!(cadence.cadence(secs(10)), secs(10), "learned afresh");
    cadence.heard(ORIGINAL, secs(62), shortest);
    cadence.heard(ORIGINAL, secs(75), shortest);
    assert_eq!(
        cadence.gaps,
        [Some(secs(13)), None, None],
        "no gap from 45 to the late 62"
    );
}
