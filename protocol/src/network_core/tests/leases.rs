//! Leases in the core: the acting primary serves them and publishes each change retained;
//! every controller keeps the table from the records, so the next primary never leases an
//! address twice.

use super::*;
use crate::lease::{LeasePart, LeaseRecord};
use crate::lease_table::CONFIRM_WITHIN;

fn ask_new(core: &mut NetworkCore, rep_uuid: &str, name: &str, at: u64) -> Vec<Command> {
    let payload = format!(
        r#"{{"rep_uuid":"{rep_uuid}","add_ctrl":-1,"add_node":-1,"options":{{"name":"{name}","location":"garden"}}}}"#
    );
    hear(core, "/dhcp/lease/new", &payload, at)
}

/// The address granted in the answer to `rep_uuid`, if one was.
fn granted(commands: &[Command], rep_uuid: &str) -> Option<Hadd> {
    commands.iter().find_map(|command| match command {
        Command::Publish {
            topic: Topic::ReplyByUuid(to),
            message: Message::LeaseReply(reply),
        } if to == rep_uuid && reply.msg_status == 200 => {
            match (&reply.add_ctrl, &reply.add_node) {
                (Some(LeasePart::Number(ctrl)), Some(LeasePart::Number(node))) => {
                    Some(Hadd::new(*ctrl as u16, *node as u16))
                }
                _ => None,
            }
        }
        _ => None,
    })
}

fn records(commands: &[Command]) -> Vec<(Hadd, LeaseRecord)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::PublishRetained {
                topic: Topic::LeaseRecord(hadd),
                message: Message::LeaseRecord(record),
            } => Some((*hadd, record.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_primary_leases_above_every_address_heard_and_publishes_the_record() {
    let (primary, epoch) = primary_with_node(5_000);
    const ORIGIN_MS: i64 = 1_765_000_000_000;
    let mut primary = primary.with_wall_clock(ORIGIN_MS);
    let commands = ask_new(&mut primary, "a-1", "pond", 5_100);
    assert!(commands.contains(&Command::Count(Counter::LeaseAnswered)));
    assert!(!commands.contains(&Command::Count(Counter::LeaseRefused)));
    let leased = granted(&commands, "a-1").expect("a lease");
    assert_eq!(leased, Hadd::new(223, 0), "above 0222, heard");
    let published = records(&commands);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, leased);
    assert_eq!(published[0].1.epoch, epoch);
    // A heartbeat from the address confirms it: published again, ONLINE and confirmed.
    let confirmed = records(&beat(&mut primary, leased, "ONLINE", 5_200));
    let held = confirmed[0].1.held.as_ref().unwrap();
    assert!(held.confirmed);
    assert_eq!(held.state, NodeState::Online);
    assert_eq!(
        held.last_seen_ms,
        Some(ORIGIN_MS + 5_200),
        "the wall clock at the beat"
    );
    // A refusal is counted as one, and answered 400.
    let refused = hear(
        &mut primary,
        "/dhcp/lease/new",
        r#"{"rep_uuid":"a-2","add_ctrl":-1,"add_node":-1}"#,
        5_300,
    );
    assert!(refused.contains(&Command::Count(Counter::LeaseRefused)));
    assert!(!refused.contains(&Command::Count(Counter::LeaseAnswered)));
    // The lease is resolved by address, by the primary only, and only by address.
    let resolve = r#"{"rep_uuid":"a-3","add_ctrl":223,"add_node":0}"#;
    let answer = hear(&mut primary, "/dhcp/resolv/hadd", resolve, 5_400);
    assert_eq!(granted(&answer, "a-3"), Some(leased));
    assert!(hear(&mut primary, "/dhcp/resolv/name", resolve, 5_500).is_empty());
    let mut follower = core(OTHER, Role::Secondary);
    assert!(hear(&mut follower, "/dhcp/resolv/hadd", resolve, 100).is_empty());
}

#[test]
fn a_follower_serves_nothing_but_keeps_the_records() {
    let (mut primary, _) = primary_with_node(5_000);
    let granting = ask_new(&mut primary, "a-1", "pond", 5_100);
    let mut follower = core(OTHER, Role::Secondary);
    assert!(ask_new(&mut follower, "b-1", "well", 100).is_empty());
    // Its epoch is below the record's: refused, and read again once the epoch is known.
    let (hadd, record) = records(&granting).remove(0);
    let topic = Topic::LeaseRecord(hadd);
    let message = Message::LeaseRecord(record.clone());
    let resubscribes = |commands: &[Command]| {
        commands
            .iter()
            .filter(|command| matches!(command, Command::Resubscribe(_)))
            .count()
    };
    assert_eq!(
        resubscribes(&run(&mut follower, 100, 190)),
        0,
        "nothing ahead"
    );
    let refused = follower.on_message(&topic, &message, ms(200));
    assert!(refused.contains(&Command::Count(Counter::Fenced)));
    assert!(follower.leases().is_empty());
    let beat = format!(
        r#"{{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":{}}}"#,
        record.epoch
    );
    hear(&mut follower, "/dhcp/resolv/heartbeat", &beat, 300);
    let later = run(&mut follower, 400, 600);
    assert!(later.contains(&Command::Resubscribe(vec![filters::LEASE_RECORDS.into()])));
    assert_eq!(resubscribes(&later), 1, "once");
    let applied = follower.on_message(&topic, &message, ms(700));
    assert!(!applied.contains(&Command::Count(Counter::Crowded)));
    assert_eq!(
        follower.leases().get(hadd).map(|lease| lease.epoch),
        Some(record.epoch)
    );
}

#[test]
fn the_next_primary_never_leases_an_address_twice() {
    let (mut first, _) = primary_with_node(5_000);
    let granting = ask_new(&mut first, "a-1", "pond", 5_100);
    let leased = granted(&granting, "a-1").unwrap();
    // Another lone primary (a later claim: a higher epoch) gets the records.
    let mut next = core(OTHER, Role::Primary);
    run(&mut next, 0, 5_000);
    assert!(next.epoch() > granting_epoch(&granting));
    for (hadd, record) in records(&granting) {
        next.on_message(
            &Topic::LeaseRecord(hadd),
            &Message::LeaseRecord(record),
            ms(5_100),
        );
    }
    let again = ask_new(&mut next, "b-1", "well", 5_200);
    let other = granted(&again, "b-1").unwrap();
    assert_ne!(other, leased);
    // The first node, restarting, locks its lease with the new primary.
    let lock = r#"{"rep_uuid":"a-2","add_ctrl":223,"add_node":0}"#;
    let locked = hear(&mut next, "/dhcp/lease/lock", lock, 5_300);
    assert_eq!(granted(&locked, "a-2"), Some(leased));
}

fn granting_epoch(commands: &[Command]) -> u64 {
    records(commands)[0].1.epoch
}

#[test]
fn an_unconfirmed_lease_is_withdrawn_and_the_removal_published() {
    let (mut primary, epoch) = primary_with_node(5_000);
    let granting = ask_new(&mut primary, "a-1", "pond", 5_100);
    let leased = granted(&granting, "a-1").unwrap();
    let within = 5_100 + CONFIRM_WITHIN.as_millis() as u64;
    let before = records(&run_beating(&mut primary, NODE, 5_200, within - 100));
    assert!(before.is_empty(), "withdrawn early: {before:?}");
    let ticks = run_beating(&mut primary, NODE, within, within + 1_000);
    let withdrawals = ticks
        .iter()
        .filter(|command| **command == Command::Count(Counter::LeaseWithdrawn))
        .count();
    assert_eq!(
        withdrawals, 1,
        "counted when a lease goes, not at every tick"
    );
    let after = records(&ticks);
    assert_eq!(after, [(leased, LeaseRecord { epoch, held: None })]);
    assert!(primary.leases().get(leased).is_none());
}

#[test]
fn two_leases_of_one_address_leave_the_higher_epoch_standing_everywhere() {
    let mut next = core(OTHER, Role::Primary);
    run(&mut next, 0, 5_000);
    // Apart, both lease the first free controller address (neither heard 0222).
    let mut alone = core(ME, Role::Primary);
    run(&mut alone, 0, 5_000);
    let from_first = records(&ask_new(&mut alone, "a-1", "pond", 5_100));
    let from_next = records(&ask_new(&mut next, "b-1", "well", 5_100));
    assert_eq!(from_first[0].0, from_next[0].0, "the same address, apart");
    let (hadd, stale) = from_first[0].clone();
    let commands = next.on_message(
        &Topic::LeaseRecord(hadd),
        &Message::LeaseRecord(stale),
        ms(5_200),
    );
    assert!(commands.contains(&Command::Count(Counter::LeaseConflict)));
    assert_eq!(next.leases().get(hadd).unwrap().name, "well");
    // The primary publishes its record again, over the displaced one on the broker.
    assert_eq!(records(&commands), [from_next[0].clone()]);
}

/// A bus heard by its heartbeat alone, whose process froze before anyone asked it, is told
/// FAILED and forgotten; its address is still never leased (the simulation found an auto bus
/// leased onto it, then the bus back beside it).
#[test]
fn an_address_forgotten_once_failed_is_never_leased() {
    let (mut primary, _) = primary_with_node(5_000);
    let silent_bus = Hadd::new(500, 0);
    beat(&mut primary, silent_bus, "ONLINE", 5_050);
    run(&mut primary, 5_100, 400_000);
    assert_eq!(
        primary.liveness().state(silent_bus),
        NodeState::Unknown,
        "forgotten"
    );
    let leased = granted(&ask_new(&mut primary, "f-1", "pond", 400_100), "f-1");
    assert_eq!(leased, Some(Hadd::new(501, 0)), "above the forgotten 0500");
}

/// The memory of forgotten addresses is bounded: the oldest go first.
#[test]
fn forgotten_addresses_are_bounded() {
    use crate::network_core::leases::{Forgotten, FORGOTTEN_ADDRESSES};
    let mut forgotten = Forgotten::default();
    for node in 0..=FORGOTTEN_ADDRESSES as u16 {
        forgotten.remember(Hadd::new(8_000, node));
    }
    let kept: Vec<Hadd> = forgotten.iter().collect();
    assert_eq!(kept.len(), FORGOTTEN_ADDRESSES);
    assert!(
        !kept.contains(&Hadd::new(8_000, 0)),
        "the oldest went first"
    );
    // Remembered again: nothing moves.
    forgotten.remember(Hadd::new(8_000, 5));
    let again: Vec<Hadd> = forgotten.iter().collect();
    assert_eq!(again, kept);
}
