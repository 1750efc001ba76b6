//! Home Assistant's discovery as the core publishes it: only while primary, paced.

use super::*;
use crate::homeassistant::DiscoverySettings;
use crate::model::Genre;

fn retained(commands: &[Command]) -> Vec<&Retain> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Retain(retain) => Some(retain),
            _ => None,
        })
        .collect()
}

/// A lone primary with Home Assistant's discovery, whose map holds `nodes` nodes with one
/// user reading each (told in discovery answers before it claimed).
fn primary_with_map(nodes: u16) -> NetworkCore {
    let mut core = core(ME, Role::Primary).with_home_assistant(DiscoverySettings {
        genres: vec![Genre::User],
        ..DiscoverySettings::default()
    });
    for chunk in (1..=nodes).collect::<Vec<_>>().chunks(10) {
        let infos: Vec<String> = chunk
            .iter()
            .map(|n| format!(r#""0500/{n:04}":{{"hadd":"0500/{n:04}","name":"n{n}"}}"#))
            .collect();
        let values: Vec<String> = chunk
            .iter()
            .map(|n| {
                format!(
                    r#""0500/{n:04}":{{"temperature":{{"0":{{"uuid":"temperature","hadd":"0500/{n:04}","genre":2,"cmd_class":49,"type":3,"label":"T","units":"°C","is_readonly":true,"data":20.5}}}}}}"#
                )
            })
            .collect();
        let nodes = format!(
            r#"{{"cmd_class":20480,"genre":4,"uuid":"request_info_nodes","reply_hadd":"0001/0000","data":{{{}}}}}"#,
            infos.join(",")
        );
        let users = format!(
            r#"{{"cmd_class":20480,"genre":4,"uuid":"request_info_users","reply_hadd":"0001/0000","data":{{{}}}}}"#,
            values.join(",")
        );
        hear(&mut core, "/nodes/0001/0000/reply", &nodes, 0);
        hear(&mut core, "/nodes/0001/0000/reply", &users, 0);
    }
    core
}

#[test]
fn a_secondary_publishes_nothing_and_a_primary_announces_a_thousand_nodes_paced() {
    let mut core = primary_with_map(1_000);
    assert_eq!(core.view().map().nodes().count(), 1_000);
    assert!(core.acting_epoch(ms(0)).is_none());
    let mut published = Vec::new();
    let mut first_claim = None;
    for at in (0..=10_000).step_by(100) {
        let commands = core.on_tick(ms(at));
        let now = retained(&commands).len();
        if core.acting_epoch(ms(at)).is_none() {
            assert_eq!(now, 0, "published at {at} ms before acting as primary");
            continue;
        }
        first_claim.get_or_insert(at);
        published.push((at, now));
    }
    let start = first_claim.expect("a lone primary claims");
    let total: usize = published.iter().map(|(_, n)| n).sum();
    // Per node: its availability, the config and the state of its reading.
    assert_eq!(total, 3_000);
    // A burst, then about 2,000 a second: never the whole map at once.
    for (at, count) in &published {
        assert!(*count <= 260, "{count} at {at} ms");
    }
    let done = published
        .iter()
        .rev()
        .find(|(_, n)| *n > 0)
        .map(|(at, _)| at - start)
        .unwrap();
    assert!(
        (1_000..=2_000).contains(&done),
        "all announced {done} ms after the claim"
    );
}

#[test]
fn answers_to_the_primary_are_counted_by_outcome() {
    let mut core = core(ME, Role::Primary);
    let done = hear(
        &mut core,
        "/nodes/0001/0000/reply",
        r#"{"uuid":"switch","hadd":"0220/0002","genre":2,"cmd_class":37,"data":"on","status":200}"#,
        0,
    );
    assert_eq!(counted(&done, Counter::Answered), 1);
    let refused = hear(
        &mut core,
        "/nodes/0001/0000/reply",
        r#"{"uuid":"switch","hadd":"0220/0002","genre":2,"cmd_class":37,"data":"dim","status":400,"error":"not an item"}"#,
        10,
    );
    assert_eq!(counted(&refused, Counter::AnswerRefused), 1);
    assert_eq!(counted(&refused, Counter::Answered), 0);
    // Answers to someone else are theirs.
    let theirs = hear(
        &mut core,
        "/nodes/9999/9990/reply",
        r#"{"uuid":"switch","hadd":"0220/0002","genre":2,"cmd_class":37,"data":"on","status":200}"#,
        20,
    );
    assert_eq!(counted(&theirs, Counter::Answered), 0);
}
