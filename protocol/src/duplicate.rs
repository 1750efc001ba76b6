//! Another process on one of our addresses: two processes beating for one HADD (an auto node
//! leased the address of a fixed bus the primary never heard, a copied config file, two Pis
//! given one `hadd`).
//!
//! A node's heartbeat is a bare string with no sender in it (the original's format), so the
//! only one who can tell two beaters apart is one of them: a process hears every beat on its
//! own addresses' heartbeat topics, and each beat it sent comes back to it once. A beat heard
//! when none of ours is awaiting its echo is another's; [`FOREIGN_BEATS`] of them within
//! [`DUPLICATE_WINDOW`] make a [`Duplicate`]. An echo is awaited [`ECHO_WAIT`]: a beat of
//! the other heard meanwhile is taken for ours (the count errs on the side of missing), and
//! an echo later than that counts as another's once (three are needed). A copy of one
//! delivery that a broker hands twice (overlapping subscriptions) within [`SAME_DELIVERY`]
//! is one beat.
//!
//! Sans-IO: the caller says when it sent and heard, with `now`; retained deliveries are the
//! caller's to skip (no node's beat is retained).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::Hadd;

/// Beats not ours, within [`DUPLICATE_WINDOW`], that make a duplicate.
pub const FOREIGN_BEATS: usize = 3;
/// How far back foreign beats count: three beats of the original's default 30 s period fit.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long a beat we sent waits for its echo.
pub const ECHO_WAIT: Duration = Duration::from_secs(5);
/// Two deliveries on one address this close are one beat handed twice (two subscriptions
/// matching: handed back to back). Kept short: two processes beating this close in phase
/// hide each other (a 1 in 250 chance for two 1 s periods, until their clocks drift apart).
pub const SAME_DELIVERY: Duration = Duration::from_millis(2);
/// Beats awaiting their echo, per address, at most (a silent broker loses them; a process
/// sends one per period).
const AWAITED_AT_MOST: usize = 8;

/// The system value a process publishes on one of its addresses while it hears another process
/// beat there ([`OwnBeats::sharing`]; the bridge publishes it at the finding, then every
/// [`SHARED_REPORT_EVERY`]): its data is the beats not its own within the window. The tools
/// show the node as shared while one was heard within [`SHARED_SHOWN_FOR`].
pub const SHARED_ADDRESS: &str = "shared_address";
/// How often a process says again that an address is shared.
pub const SHARED_REPORT_EVERY: Duration = Duration::from_secs(2);
/// How long the tools show an address as shared after the last word of it.
pub const SHARED_SHOWN_FOR: Duration = Duration::from_secs(10);

/// The publication of [`SHARED_ADDRESS`] for `duplicate`.
pub fn shared_address_value(duplicate: &Duplicate) -> (crate::Topic, crate::Message) {
    use crate::{CommandClass, Genre, ValueDescriptor, ValuePublication};
    let mut value =
        ValueDescriptor::new(SHARED_ADDRESS, Genre::System, CommandClass::CONFIGURATION);
    value.hadd = Some(duplicate.hadd);
    value.data = (duplicate.foreign_beats as i64).into();
    value.label = Some("Another process beats on this address".to_owned());
    value.is_readonly = Some(true);
    let topic = crate::Topic::Value {
        genre: Genre::System,
        hadd: duplicate.hadd,
        uuid: SHARED_ADDRESS.to_owned(),
    };
    let message = crate::Message::Value(ValuePublication::Single(Box::new(value)));
    (topic, message)
}

/// Another process beats on one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// The address.
    pub hadd: Hadd,
    /// Beats heard that were not ours, within [`DUPLICATE_WINDOW`].
    pub foreign_beats: usize,
}

#[derive(Debug, Default)]
struct Echoes {
    /// When our beats awaiting their echo were sent, oldest first.
    awaited: VecDeque<Duration>,
    /// When beats not ours were heard, oldest first (at most [`FOREIGN_BEATS`]).
    foreign: VecDeque<Duration>,
    /// The last delivery heard.
    last_heard: Option<Duration>,
}

/// The beats of this process's addresses: sent, and heard back.
#[derive(Debug, Default)]
pub struct OwnBeats {
    addresses: BTreeMap<Hadd, Echoes>,
}

impl OwnBeats {
    /// Watches `addresses` (this process's nodes).
    pub fn new(addresses: impl IntoIterator<Item = Hadd>) -> OwnBeats {
        OwnBeats {
            addresses: addresses
                .into_iter()
                .map(|hadd| (hadd, Echoes::default()))
                .collect(),
        }
    }

    /// Watches `addresses` too (a bus registered later).
    pub fn watch(&mut self, addresses: impl IntoIterator<Item = Hadd>) {
        for hadd in addresses {
            self.addresses.entry(hadd).or_default();
        }
    }

    /// Whether another process may beat on `hadd`: a beat not ours heard within the window
    /// (one is enough: our OFFLINE there would speak for the other's live node too, and an
    /// OFFLINE left out costs less than a false one).
    pub fn shared(&self, hadd: Hadd, now: Duration) -> bool {
        self.addresses.get(&hadd).is_some_and(|echoes| {
            echoes
                .foreign
                .back()
                .is_some_and(|last| now.saturating_sub(*last) <= DUPLICATE_WINDOW)
        })
    }

    /// Every address of ours with a [`Duplicate`] standing now: [`FOREIGN_BEATS`] not ours
    /// within the window (one alone may be an echo of ours come late).
    pub fn sharing(&self, now: Duration) -> Vec<Duplicate> {
        self.addresses
            .iter()
            .map(|(hadd, echoes)| Duplicate {
                hadd: *hadd,
                foreign_beats: echoes
                    .foreign
                    .iter()
                    .filter(|at| now.saturating_sub(**at) <= DUPLICATE_WINDOW)
                    .count(),
            })
            .filter(|duplicate| duplicate.foreign_beats >= FOREIGN_BEATS)
            .collect()
    }

    /// Whether `hadd` is one of ours.
    pub fn watches(&self, hadd: Hadd) -> bool {
        self.addresses.contains_key(&hadd)
    }

    /// We sent a beat on `hadd` at `now`.
    pub fn sent(&mut self, hadd: Hadd, now: Duration) {
        if let Some(echoes) = self.addresses.get_mut(&hadd) {
            if echoes.awaited.len() == AWAITED_AT_MOST {
                echoes.awaited.pop_front();
            }
            echoes.awaited.push_back(now);
        }
    }

    /// A (live) beat on `hadd` was heard at `now`: a [`Duplicate`] when it is the
    /// [`FOREIGN_BEATS`]th not ours within [`DUPLICATE_WINDOW`] (and at each one after).
    pub fn heard(&mut self, hadd: Hadd, now: Duration) -> Option<Duplicate> {
        let echoes = self.addresses.get_mut(&hadd)?;
        let again = echoes
            .last_heard
            .is_some_and(|last| now.saturating_sub(last) < SAME_DELIVERY);
        echoes.last_heard = Some(now);
        if again {
            return None;
        }
        while echoes
            .awaited
            .front()
            .is_some_and(|sent| now.saturating_sub(*sent) > ECHO_WAIT)
        {
            echoes.awaited.pop_front();
        }
        if echoes.awaited.pop_front().is_some() {
            return None;
        }
        while echoes
            .foreign
            .front()
            .is_some_and(|at| now.saturating_sub(*at) > DUPLICATE_WINDOW)
        {
            echoes.foreign.pop_front();
        }
        if echoes.foreign.len() == FOREIGN_BEATS {
            echoes.foreign.pop_front();
        }
        echoes.foreign.push_back(now);
        (echoes.foreign.len() == FOREIGN_BEATS).then_some(Duplicate {
            hadd,
            foreign_beats: echoes.foreign.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Hadd = Hadd { ctrl: 10, node: 0 };

    /// The value the tools read: on the shared address, its system genre, the count.
    #[test]
    fn the_shared_address_value_names_the_address_and_counts() {
        let (topic, message) = shared_address_value(&Duplicate {
            hadd: OURS,
            foreign_beats: 3,
        });
        assert_eq!(topic.to_string(), "/values/system/0010/0000/shared_address");
        let payload = message.encode(crate::Codec::Json);
        let decoded = crate::Message::decode(&topic, &payload, crate::Codec::Json).unwrap();
        let crate::Message::Value(publication) = decoded else {
            panic!("{decoded:?}");
        };
        let value = publication.instances()[0];
        assert_eq!(value.uuid, SHARED_ADDRESS);
        assert_eq!(crate::value::data_as_f64(&value.data), Some(3.0));
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Our beats every second, each echoed 5 ms later, for `seconds`: never a duplicate.
    #[test]
    fn our_own_echoes_are_never_another_process() {
        let mut beats = OwnBeats::new([OURS]);
        for second in 0..600 {
            let at = secs(f64::from(second));
            beats.sent(OURS, at);
            assert_eq!(beats.heard(OURS, at + secs(0.005)), None);
        }
        assert!(
            !beats.shared(OURS, secs(600.0)),
            "our own beats share nothing"
        );
    }

    /// A second process beating on our address every 30 s (the original's default) is found
    /// at its third beat, within two minutes; ours beat every second meanwhile.
    #[test]
    fn another_process_on_our_address_is_found_at_its_third_beat() {
        let mut beats = OwnBeats::new([OURS]);
        let mut found = None;
        for tenth in 0..1_000u32 {
            let at = secs(f64::from(tenth) / 10.0);
            if tenth % 10 == 0 {
                beats.sent(OURS, at);
                assert_eq!(beats.heard(OURS, at + secs(0.004)), None, "at {at:?}");
            }
            if tenth % 300 == 155 {
                if let Some(duplicate) = beats.heard(OURS, at + secs(0.007)) {
                    found.get_or_insert((at, duplicate));
                }
            }
        }
        let (at, duplicate) = found.expect("the other process was never found");
        assert!(beats.shared(OURS, secs(100.0)));
        assert!(
            !beats.shared(OURS, secs(196.0)),
            "its last beat is 120.5 s old"
        );
        assert!(!beats.shared(Hadd::new(10, 1), secs(100.0)));
        assert_eq!(at, secs(75.5), "found at its third beat");
        assert_eq!(duplicate.foreign_beats, FOREIGN_BEATS);
        assert_eq!(duplicate.hadd, OURS);
    }

    /// Beats not ours spread wider than the window never add up to a duplicate.
    #[test]
    fn foreign_beats_older_than_the_window_are_forgotten() {
        let mut beats = OwnBeats::new([OURS]);
        assert_eq!(beats.heard(OURS, secs(0.0)), None);
        assert_eq!(beats.heard(OURS, secs(100.0)), None);
        assert_eq!(
            beats.heard(OURS, secs(200.0)),
            None,
            "the first is 200 s old"
        );
        assert!(
            beats.heard(OURS, secs(210.0)).is_some(),
            "three within 110 s"
        );
        assert!(beats.shared(OURS, secs(330.0)));
        assert!(!beats.shared(OURS, secs(331.0)));
    }

    /// A beat handed twice (two subscriptions matching) is one: our beat's echo and its copy
    /// never look like another process, however long it goes on.
    #[test]
    fn a_delivery_handed_twice_is_one_beat() {
        let mut beats = OwnBeats::new([OURS]);
        for second in 0..300 {
            let at = secs(f64::from(second));
            beats.sent(OURS, at);
            assert_eq!(beats.heard(OURS, at + secs(0.003)), None);
            assert_eq!(
                beats.heard(OURS, at + secs(0.0031)),
                None,
                "the copy at {at:?}"
            );
        }
    }

    /// An echo that comes after [`ECHO_WAIT`] was not awaited any more: counted as another's
    /// (the count forgets it within the window); an echo in time is ours.
    #[test]
    fn an_echo_awaited_too_long_no_longer_excuses_a_beat() {
        let mut beats = OwnBeats::new([OURS]);
        beats.sent(OURS, secs(0.0));
        beats.sent(OURS, secs(1.0));
        assert_eq!(
            beats.heard(OURS, secs(5.5)),
            None,
            "the second is still awaited"
        );
        assert_eq!(beats.heard(OURS, secs(5.6)), None, "one foreign so far");
        assert_eq!(beats.heard(OURS, secs(5.7)), None, "two foreign so far");
        assert!(beats.heard(OURS, secs(5.8)).is_some());
    }

    /// Addresses not ours are not watched; our other address keeps its own count.
    #[test]
    fn only_our_addresses_are_counted_each_on_its_own() {
        let other = Hadd::new(10, 1);
        let mut beats = OwnBeats::new([OURS, other]);
        assert!(!beats.watches(Hadd::new(11, 0)));
        assert!(beats.watches(OURS) && beats.watches(other));
        for at in 0..10 {
            assert_eq!(beats.heard(Hadd::new(11, 0), secs(f64::from(at))), None);
        }
        assert_eq!(beats.heard(OURS, secs(1.0)), None);
        assert_eq!(beats.heard(other, secs(2.0)), None);
        assert_eq!(beats.heard(OURS, secs(3.0)), None);
        assert_eq!(beats.heard(other, secs(4.0)), None);
        assert_eq!(
            beats.heard(OURS, secs(5.0)),
            Some(Duplicate {
                hadd: OURS,
                foreign_beats: 3
            })
        );
    }

    /// A bus registered later is watched from then on.
    #[test]
    fn an_address_watched_later_is_counted() {
        let later = Hadd::new(12, 0);
        let mut beats = OwnBeats::new([OURS]);
        assert!(!beats.watches(later));
        beats.watch([later]);
        assert!(beats.watches(later));
        for at in [1.0, 2.0] {
            assert_eq!(beats.heard(later, secs(at)), None);
        }
        assert!(beats.heard(later, secs(3.0)).is_some());
    }

    /// At most eight of our beats await their echo: ten sent and none echoed yet, then ten
    /// deliveries: the eight awaited are ours, the last two are not, and a third not ours
    /// makes a duplicate.
    #[test]
    fn at_most_eight_beats_await_their_echo() {
        let mut beats = OwnBeats::new([OURS]);
        for tenth in 0..10 {
            beats.sent(OURS, secs(f64::from(tenth) / 10.0));
        }
        for tenth in 0..10 {
            let at = secs(1.0 + f64::from(tenth) / 10.0);
            assert_eq!(beats.heard(OURS, at), None, "delivery {tenth}");
        }
        assert!(beats.shared(OURS, secs(2.0)), "two were not ours");
        assert_eq!(beats.sharing(secs(2.0)), [], "not yet a duplicate");
        assert!(beats.heard(OURS, secs(2.5)).is_some());
        assert_eq!(
            beats.sharing(secs(3.0)),
            [Duplicate {
                hadd: OURS,
                foreign_beats: 3
            }]
        );
        assert_eq!(beats.sharing(secs(200.0)), [], "a window later");
    }

    /// The edges: deliveries exactly [`SAME_DELIVERY`] apart are two; an echo exactly
    /// [`ECHO_WAIT`] late is still ours; a beat exactly [`DUPLICATE_WINDOW`] old still counts.
    #[test]
    fn the_limits_are_inclusive_where_they_keep_a_beat() {
        let mut beats = OwnBeats::new([OURS]);
        beats.sent(OURS, secs(0.0));
        assert_eq!(beats.heard(OURS, ECHO_WAIT), None, "ours, 5 s late");
        assert!(!beats.shared(OURS, ECHO_WAIT));
        let first = ECHO_WAIT + secs(1.0);
        assert_eq!(beats.heard(OURS, first), None);
        assert_eq!(beats.heard(OURS, first + SAME_DELIVERY), None);
        assert!(
            beats.heard(OURS, first + DUPLICATE_WINDOW).is_some(),
            "the first, exactly a window old, still counts; the second, 2 ms on, was a beat"
        );
    }
}
