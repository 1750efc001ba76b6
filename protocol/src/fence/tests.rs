use super::*;
use crate::hadd::HaddTarget;
use crate::model::NodeState;

const A: Hadd = Hadd::new(1, 0);
const B: Hadd = Hadd::new(2, 0);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn epoch(round: u64, hadd: Hadd) -> u64 {
    (round << 16) | u64::from(hadd.ctrl)
}

const C: Hadd = Hadd::new(3, 0);

/// A fence that heard the candidacies of A, B and C (controllers of ours, announcing).
fn announced() -> EpochFence {
    let mut fence = EpochFence::new(ms(500));
    for hadd in [A, B, C] {
        fence.announced(hadd, ms(0));
    }
    fence
}

fn settled_on(round: u64) -> EpochFence {
    let mut fence = announced();
    assert_eq!(
        fence.on_primary_heartbeat(A, epoch(round, A), ms(0)),
        Verdict::Newer
    );
    fence
}

#[test]
fn the_next_epoch_is_checked_and_never_wraps() {
    assert_eq!(next_epoch(0, 3), Some(0x1_0003));
    assert_eq!(next_epoch(epoch(7, A), 2), Some(0x8_0002));
    assert_eq!(next_epoch(MAX_ROUND << 16, 2), None);
    assert_eq!(next_epoch(u64::MAX, 2), None);
}

#[test]
fn every_claimable_epoch_stays_below_two_to_the_52() {
    let (highest, next) = ((MAX_ROUND << 16) | 0xffff, (MAX_ROUND + 1) << 16);
    assert_eq!((highest < 1 << 52, next >= 1 << 52), (true, true));
}

#[test]
fn the_last_round_is_claimable_and_the_next_is_not() {
    let last = (MAX_ROUND << 16) | 1;
    assert_eq!(check_claim(A, last), Ok(()));
    assert_eq!(
        check_claim(A, ((MAX_ROUND + 1) << 16) | 1),
        Err(Forgery::BeyondRange)
    );
    assert_eq!(next_epoch((MAX_ROUND - 1) << 16, 1), Some(last));
    assert_eq!(next_epoch(last, 1), None);
    assert!(Forgery::WrongClaimant { named: 2 }
        .to_string()
        .contains("0002"));
    assert!(Forgery::BeyondRange
        .to_string()
        .contains(&MAX_ROUND.to_string()));
}

#[test]
fn impossible_epochs_are_forged() {
    assert_eq!(check_claim(A, 0), Ok(()), "the original's primary");
    assert_eq!(check_claim(A, epoch(5, A)), Ok(()));
    assert_eq!(check_claim(A, u64::MAX), Err(Forgery::BeyondRange));
    assert_eq!(
        check_claim(A, epoch(5, B)),
        Err(Forgery::WrongClaimant { named: 2 })
    );
    assert_eq!(check_claim(A, 1), Err(Forgery::RoundZero));
    let mut fence = settled_on(3);
    assert_eq!(
        fence.on_primary_heartbeat(B, u64::MAX, ms(10)),
        Verdict::Forged(Forgery::BeyondRange)
    );
    assert_eq!(fence.highest(), epoch(3, A), "nothing adopted");
}

#[test]
fn epochs_never_go_backwards() {
    let mut fence = settled_on(3);
    assert_eq!(
        fence.on_primary_heartbeat(B, epoch(2, B), ms(10)),
        Verdict::Stale
    );
    assert_eq!(
        fence.on_primary_heartbeat(A, epoch(3, A), ms(20)),
        Verdict::Current
    );
    assert_eq!(
        fence.on_primary_heartbeat(B, epoch(4, B), ms(30)),
        Verdict::Newer
    );
    assert_eq!(fence.primary(), Some((B, epoch(4, B))));
    assert_eq!(
        fence.on_primary_heartbeat(A, epoch(3, A), ms(40)),
        Verdict::Stale
    );
}

#[test]
fn a_jump_of_several_rounds_needs_a_repeat_from_the_same_sender() {
    let mut fence = settled_on(3);
    let far = epoch(9, B);
    assert_eq!(
        fence.on_primary_heartbeat(B, far, ms(100)),
        Verdict::Unconfirmed
    );
    assert_eq!(
        fence.on_primary_heartbeat(B, far, ms(400)),
        Verdict::Unconfirmed,
        "too soon"
    );
    assert_eq!(fence.highest(), epoch(3, A));
    assert_eq!(fence.on_primary_heartbeat(B, far, ms(600)), Verdict::Newer);
    assert_eq!(fence.primary(), Some((B, far)));
}

#[test]
fn a_jump_is_confirmed_only_by_the_same_sender_and_epoch() {
    let mut fence = settled_on(3);
    let (b_far, c_far) = (epoch(9, B), epoch(9, C));
    assert_eq!(
        fence.on_primary_heartbeat(B, b_far, ms(100)),
        Verdict::Unconfirmed
    );
    assert_eq!(
        fence.on_primary_heartbeat(C, c_far, ms(700)),
        Verdict::Unconfirmed,
        "another sender does not confirm B's jump"
    );
    assert_eq!(fence.highest(), epoch(3, A));
    let mut fence = settled_on(3);
    assert_eq!(
        fence.on_primary_heartbeat(B, b_far, ms(100)),
        Verdict::Unconfirmed
    );
    assert_eq!(
        fence.on_primary_heartbeat(B, epoch(8, B), ms(700)),
        Verdict::Unconfirmed,
        "nor does another epoch of the same sender"
    );
    assert_eq!(fence.highest(), epoch(3, A));
}

#[test]
fn a_claim_of_ones_own_is_the_highest() {
    let mut fence = announced();
    fence.claimed(B, epoch(1, B));
    assert_eq!(fence.highest(), epoch(1, B));
    assert_eq!(fence.primary(), Some((B, epoch(1, B))));
    assert_eq!(
        fence.on_primary_heartbeat(A, epoch(1, A), ms(0)),
        Verdict::Stale,
        "the same round from a lower controller"
    );
}

#[test]
fn a_new_or_rejoining_listener_believes_any_plausible_epoch_at_once() {
    let mut fresh = EpochFence::new(ms(500));
    assert_eq!(
        fresh.on_primary_heartbeat(B, epoch(40, B), ms(0)),
        Verdict::Newer
    );
    let mut back = settled_on(3);
    back.rejoined();
    assert_eq!(
        back.on_primary_heartbeat(B, epoch(9, B), ms(0)),
        Verdict::Newer
    );
}

/// Issue 21: a stranger beating a plausible claim once a second stayed the only primary for
/// as long as it beat. A claim from a controller never announced is refused while the primary
/// is alive, however often repeated.
#[test]
fn an_unannounced_claim_moves_nothing_while_the_primary_lives() {
    let stranger = Hadd::new(9, 0);
    let mut fence = settled_on(3);
    for second in 1..=10 {
        let at = ms(second * 1_000);
        assert_eq!(
            fence.on_primary_heartbeat(A, epoch(3, A), at),
            Verdict::Current
        );
        assert_eq!(
            fence.on_primary_heartbeat(stranger, epoch(4, stranger), at + ms(10)),
            Verdict::Unannounced,
            "second {second}"
        );
    }
    assert_eq!(fence.primary(), Some((A, epoch(3, A))));
    assert_eq!(fence.highest(), epoch(3, A));
    // A controller that announced itself is believed at once.
    fence.announced(stranger, ms(10_500));
    assert_eq!(
        fence.on_primary_heartbeat(stranger, epoch(4, stranger), ms(10_600)),
        Verdict::Newer
    );
}

#[test]
fn once_the_primary_is_silent_an_unannounced_claim_is_believed() {
    let stranger = Hadd::new(9, 0);
    let mut fence = settled_on(3);
    // Alive up to three intervals (six of confirm_after) after its last heartbeat...
    assert_eq!(
        fence.on_primary_heartbeat(stranger, epoch(4, stranger), ms(3_000)),
        Verdict::Unannounced
    );
    // ...silent past them: a candidacy may have been lost; the claim is believed.
    assert_eq!(
        fence.on_primary_heartbeat(stranger, epoch(4, stranger), ms(3_001)),
        Verdict::Newer
    );
    // Gone by its Last Will: at once.
    let mut fence = settled_on(3);
    fence.primary_gone();
    assert_eq!(
        fence.on_primary_heartbeat(stranger, epoch(4, stranger), ms(10)),
        Verdict::Newer
    );
}

#[test]
fn a_primary_refuses_unannounced_claims_whatever_the_time() {
    let stranger = Hadd::new(9, 0);
    let mut fence = announced();
    fence.claimed(A, epoch(1, A));
    assert_eq!(
        fence.on_primary_heartbeat(stranger, epoch(2, stranger), ms(3_600_000)),
        Verdict::Unannounced
    );
    assert_eq!(
        fence.on_primary_heartbeat(B, epoch(2, B), ms(3_600_000)),
        Verdict::Newer,
        "an announced controller's claim is believed"
    );
    // Followed a newer primary: this listener's own claim is over.
    assert_eq!(
        fence.on_primary_heartbeat(stranger, epoch(3, stranger), ms(3_600_000 + 3_001)),
        Verdict::Newer
    );
}

#[test]
fn the_memory_of_candidacies_is_bounded_and_forgets_the_least_recent() {
    let mut fence = EpochFence::new(ms(500));
    for n in 0..MAX_ANNOUNCED as u16 + 10 {
        fence.announced(Hadd::new(100 + n, 0), ms(u64::from(n)));
    }
    assert_eq!(fence.announced.len(), MAX_ANNOUNCED);
    assert!(!fence.announced.contains_key(&Hadd::new(100, 0)));
    assert!(!fence.announced.contains_key(&Hadd::new(109, 0)));
    assert!(fence.announced.contains_key(&Hadd::new(110, 0)));
    // Heard again: kept, nothing else forgotten.
    fence.announced(Hadd::new(110, 0), ms(100_000));
    assert_eq!(fence.announced.len(), MAX_ANNOUNCED);
}

fn dispatch(epoch: Option<u64>, observer: Option<Hadd>) -> Heartbeat {
    Heartbeat {
        target: HaddTarget::AllNodes { ctrl: 220 },
        state: NodeState::Failed,
        epoch,
        observer,
    }
}

#[test]
fn only_the_primary_of_the_highest_epoch_speaks_for_nodes() {
    let mut fence = EpochFence::new(ms(500));
    let current = epoch(3, A);
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(current), Some(A))),
        DispatchVerdict::NoPrimary
    );
    fence.on_primary_heartbeat(A, current, ms(0));
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(current), Some(A))),
        DispatchVerdict::Accepted
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(1), Some(Hadd::new(666, 0)))),
        DispatchVerdict::Forged(Forgery::WrongClaimant { named: 1 })
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(epoch(2, B)), Some(B))),
        DispatchVerdict::Stale
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(epoch(4, B)), Some(B))),
        DispatchVerdict::NotFromPrimary,
        "ahead of the primary heartbeat"
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(None, None)),
        DispatchVerdict::Stale,
        "unsigned while an epoch is known"
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(epoch(4, A)), Some(A))),
        DispatchVerdict::NotFromPrimary,
        "the primary's address with an epoch it does not hold"
    );
    // The primary is gone: its epoch is still the highest, and nobody speaks for nodes.
    fence.primary_gone();
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(current), Some(A))),
        DispatchVerdict::NoPrimary
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(epoch(2, B)), Some(B))),
        DispatchVerdict::Stale
    );
}

#[test]
fn the_originals_unsigned_dispatches_are_believed_from_its_primary() {
    let mut fence = EpochFence::new(ms(500));
    fence.on_primary_heartbeat(A, 0, ms(0));
    assert_eq!(
        fence.judge_dispatch(&dispatch(None, None)),
        DispatchVerdict::Accepted
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(None, Some(B))),
        DispatchVerdict::NotFromPrimary
    );
}

#[test]
fn map_answers_of_a_replaced_primary_are_refused() {
    let fence = settled_on(3);
    assert!(fence.accepts_map_answer(Some(epoch(3, A))));
    assert!(!fence.accepts_map_answer(Some(epoch(2, B))));
    assert!(!fence.accepts_map_answer(None));
}

#[test]
fn the_originals_primary_is_believed_while_it_beats_and_the_epoch_stays() {
    let mut fresh = EpochFence::new(ms(500));
    assert_eq!(fresh.on_primary_heartbeat(A, 0, ms(0)), Verdict::Newer);
    assert_eq!(
        fresh.on_primary_heartbeat(A, 0, ms(15_000)),
        Verdict::Current
    );
    assert!(fresh.follows_original());

    // Once an epoch is seen, where no original may run, it is stale: no stranger poses as one.
    let mut ours_only = settled_on(3);
    assert_eq!(
        ours_only.on_primary_heartbeat(B, 0, ms(100)),
        Verdict::Stale
    );
    assert_eq!(
        ours_only.on_primary_heartbeat(B, 0, ms(15_100)),
        Verdict::Stale
    );
    assert_eq!(ours_only.primary(), Some((A, epoch(3, A))));

    // Where one may run, following one of ours: one epoch-less heartbeat moves nothing, its
    // repeat does.
    let mut fence = settled_on(3).beside_original(true);
    assert_eq!(
        fence.on_primary_heartbeat(B, 0, ms(100)),
        Verdict::Unconfirmed
    );
    assert_eq!(fence.primary(), Some((A, epoch(3, A))));
    assert!(fence.accepts_map_answer(Some(epoch(3, A))));
    assert!(!fence.accepts_map_answer(None));
    assert_eq!(
        fence.on_primary_heartbeat(B, 0, ms(300)),
        Verdict::Unconfirmed
    );
    assert_eq!(fence.on_primary_heartbeat(B, 0, ms(15_100)), Verdict::Newer);
    assert_eq!(fence.primary(), Some((B, 0)));
    assert_eq!(fence.highest(), epoch(3, A), "the highest epoch stays");
    assert!(fence.accepts_map_answer(None), "its answers carry none");
    assert_eq!(
        fence.judge_dispatch(&dispatch(None, None)),
        DispatchVerdict::Accepted
    );
    assert_eq!(
        fence.judge_dispatch(&dispatch(Some(epoch(3, A)), Some(A))),
        DispatchVerdict::NotFromPrimary,
        "the replaced primary of ours no longer speaks for nodes"
    );
    assert_eq!(
        fence.on_primary_heartbeat(A, epoch(3, A), ms(15_200)),
        Verdict::Stale
    );
    // A claim after it is lost takes the round above the highest.
    fence.primary_gone();
    assert_eq!(
        fence.on_primary_heartbeat(A, epoch(4, A), ms(60_000)),
        Verdict::Newer
    );
    assert!(!fence.accepts_map_answer(None));
}

#[test]
fn back_from_away_an_unannounced_claim_is_believed_until_the_primary_is_heard_again() {
    let stranger = Hadd::new(9, 0);
    let mut fence = settled_on(3);
    fence.rejoined();
    // The network may have moved on to a controller that started while this one was away.
    assert_eq!(
        fence.on_primary_heartbeat(stranger, epoch(4, stranger), ms(1_000)),
        Verdict::Newer
    );
    assert!(fence.primary_alive(ms(1_000)));
    // A primary back from away is alive again once it resumes (claims) its epoch.
    let mut fence = announced();
    fence.claimed(A, epoch(1, A));
    fence.rejoined();
    assert!(!fence.primary_alive(ms(0)));
    fence.claimed(A, epoch(1, A));
    assert!(fence.primary_alive(ms(3_600_000)));
}
