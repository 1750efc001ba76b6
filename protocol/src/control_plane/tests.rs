use super::*;
use crate::heartbeat::ResolvHeartbeat;

const SECRET: &[u8] = b"correct horse battery staple\n";
const PRIMARY: Hadd = Hadd::new(1, 0);
const SECONDARY: Hadd = Hadd::new(2, 0);
const NOW: u64 = 1_800_000_000_000;

fn plane(me: Hadd, since: u64) -> ControlPlane {
    ControlPlane::new(
        ControlKey::from_secret(SECRET).unwrap(),
        me,
        since,
        DEFAULT_WINDOW_MS,
    )
}

fn primary_beat() -> Message {
    Message::ResolvHeartbeat(ResolvHeartbeat {
        hadd: PRIMARY,
        state: NodeState::Online,
        epoch: Some(0x10001),
    })
}

fn tree_of(payload: &[u8], codec: Codec) -> Data {
    codec.decode_tree(payload).unwrap()
}

fn candidacy_topic(hadd: Hadd) -> Topic {
    Topic::Value {
        genre: Genre::System,
        hadd,
        uuid: CANDIDACY.into(),
    }
}

#[test]
fn a_short_secret_is_no_key() {
    assert!(ControlKey::from_secret(b"  too short  \n").is_none());
    assert!(ControlKey::from_secret(&[b'k'; MIN_SECRET]).is_some());
}

#[test]
fn what_a_controller_signs_another_believes_in_either_codec() {
    let sender = plane(PRIMARY, NOW - 5_000);
    for codec in [Codec::Json, Codec::MessagePack] {
        let mut receiver = plane(SECONDARY, NOW);
        let payload = sender.seal(&Topic::ResolvHeartbeat, &primary_beat(), codec, NOW, 1);
        let tree = tree_of(&payload, codec);
        assert_eq!(
            receiver.admit(&Topic::ResolvHeartbeat, Some(&tree), NOW + 1_000),
            Ok(())
        );
        // Additive: the message still reads as the original's.
        let decoded = Message::from_tree(&Topic::ResolvHeartbeat, &tree).unwrap();
        assert_eq!(decoded, primary_beat());
    }
}

#[test]
fn unsigned_tampered_stale_and_replayed_control_messages_are_refused() {
    let sender = plane(PRIMARY, NOW);
    let mut receiver = plane(SECONDARY, NOW);
    let topic = Topic::ResolvHeartbeat;
    let unsigned = primary_beat().to_tree();
    assert_eq!(
        receiver.admit(&topic, Some(&unsigned), NOW),
        Err(Refusal::Unsigned)
    );
    assert_eq!(receiver.admit(&topic, None, NOW), Err(Refusal::Unsigned));

    let payload = sender.seal(&topic, &primary_beat(), Codec::Json, NOW, 1);
    let mut tampered = tree_of(&payload, Codec::Json);
    tampered["epoch"] = Data::from(0x90001);
    assert_eq!(
        receiver.admit(&topic, Some(&tampered), NOW),
        Err(Refusal::BadSignature)
    );
    let other = ControlPlane::new(
        ControlKey::from_secret(b"another secret, as long as the first").unwrap(),
        PRIMARY,
        NOW,
        DEFAULT_WINDOW_MS,
    );
    let foreign = other.seal(&topic, &primary_beat(), Codec::Json, NOW, 1);
    assert_eq!(
        receiver.admit(&topic, Some(&tree_of(&foreign, Codec::Json)), NOW),
        Err(Refusal::BadSignature)
    );

    let genuine = tree_of(&payload, Codec::Json);
    let late = NOW + DEFAULT_WINDOW_MS + 1;
    assert_eq!(
        receiver.admit(&topic, Some(&genuine), late),
        Err(Refusal::Stale {
            off_ms: DEFAULT_WINDOW_MS + 1
        })
    );
    let early = NOW - DEFAULT_WINDOW_MS - 1;
    assert!(matches!(
        receiver.admit(&topic, Some(&genuine), early),
        Err(Refusal::Stale { .. })
    ));
    assert_eq!(
        receiver.admit(&topic, Some(&genuine), NOW + DEFAULT_WINDOW_MS),
        Ok(())
    );
    assert_eq!(
        receiver.admit(&topic, Some(&genuine), NOW + 1),
        Err(Refusal::Replayed)
    );
}

/// What is signed is the canonical form: keys sorted at every level, compact, the top-level
/// signature left out; so any encoder's field order verifies.
#[test]
fn the_signed_form_is_canonical() {
    let tree: Data = serde_json::from_str(
        r#"{"z": {"b": [1, 2.5, "x"], "a": null}, "sig": "ignored", "a": 1, "m": {"sig": 2}}"#,
    )
    .unwrap();
    let mut bytes = Vec::new();
    canonical(&tree, true, &mut bytes);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"a":1,"m":{"sig":2},"z":{"a":null,"b":[1,2.5,"x"]}}"#
    );
    let key = ControlKey::from_secret(SECRET).unwrap();
    let mut signed = tree.clone();
    key.sign(&mut signed, NOW);
    assert_eq!(key.verify(&signed).map(|it| it.stamp_ms), Ok(NOW));
    assert_eq!(signed[STAMP], Data::from(NOW));
    assert_eq!(signed[SIGNATURE].as_str().map(str::len), Some(64));
}

#[test]
fn only_control_topics_and_keyed_controllers_heartbeats_are_checked() {
    let mut receiver = plane(SECONDARY, NOW);
    let node_beat = Topic::Heartbeat(Hadd::new(220, 1));
    assert_eq!(receiver.admit(&node_beat, None, NOW), Ok(()));
    assert!(is_control(&Topic::HeartbeatOnBehalf));
    assert!(is_control(&Topic::ResolvReply(SECONDARY)));
    assert!(is_control(&candidacy_topic(PRIMARY)));
    assert!(!is_control(&Topic::Value {
        genre: Genre::User,
        hadd: PRIMARY,
        uuid: CANDIDACY.into()
    }));
    assert!(!is_control(&Topic::NodeRequest(PRIMARY)));
    // Before the primary announced itself signed, its plain heartbeat is a node's.
    assert_eq!(
        receiver.admit(&Topic::Heartbeat(PRIMARY), None, NOW),
        Ok(())
    );
}

/// The issue's attack: one `OFFLINE` on the primary's heartbeat topic. Once the primary has
/// announced itself signed, its heartbeats must be signed; its Last Will (stamped with its
/// `since`) is believed once; an older process's Will is stale.
#[test]
fn a_keyed_controllers_offline_must_be_its_own_and_its_will_counts_once() {
    let since = NOW - 3_600_000;
    let primary = plane(PRIMARY, since);
    let mut receiver = plane(SECONDARY, NOW);
    let announce = primary.seal(
        &candidacy_topic(PRIMARY),
        &Message::Value(crate::value::ValuePublication::Single(Box::default())),
        Codec::Json,
        NOW,
        1,
    );
    let announce = tree_of(&announce, Codec::Json);
    assert_eq!(announce[SINCE], Data::from(since));
    assert_eq!(
        receiver.admit(&candidacy_topic(PRIMARY), Some(&announce), NOW),
        Ok(())
    );
    let topic = Topic::Heartbeat(PRIMARY);
    assert!(receiver.checks(&topic));
    let forged = Heartbeat::own(PRIMARY, NodeState::Offline).to_tree();
    assert_eq!(
        receiver.admit(&topic, Some(&forged), NOW),
        Err(Refusal::Unsigned)
    );
    assert_eq!(receiver.admit(&topic, None, NOW), Err(Refusal::Unsigned));

    // Its Will, an hour old: believed once.
    let will = tree_of(&primary.will(Codec::Json, 1), Codec::Json);
    assert_eq!(will[STAMP], Data::from(since));
    assert_eq!(receiver.admit(&topic, Some(&will), NOW), Ok(()));
    assert_eq!(
        receiver.admit(&topic, Some(&will), NOW + 5),
        Err(Refusal::Replayed)
    );

    // A restarted primary: the old process's Will is stale now, the new one's counts.
    let restarted = plane(PRIMARY, NOW + 10_000);
    let announce = restarted.seal(
        &candidacy_topic(PRIMARY),
        &Message::Value(crate::value::ValuePublication::Single(Box::default())),
        Codec::Json,
        NOW + 10_000,
        1,
    );
    receiver
        .admit(
            &candidacy_topic(PRIMARY),
            Some(&tree_of(&announce, Codec::Json)),
            NOW + 10_000,
        )
        .unwrap();
    let old_will = tree_of(&primary.will(Codec::Json, 1), Codec::Json);
    assert!(matches!(
        receiver.admit(&topic, Some(&old_will), NOW + 3_600_000),
        Err(Refusal::Stale { .. })
    ));
    let new_will = tree_of(&restarted.will(Codec::Json, 1), Codec::Json);
    assert_eq!(
        receiver.admit(&topic, Some(&new_will), NOW + 3_600_000),
        Ok(())
    );
}

#[test]
fn a_replay_of_a_believed_will_within_the_window_is_refused() {
    let since = NOW - 1_000;
    let primary = plane(PRIMARY, since);
    let mut receiver = plane(SECONDARY, NOW);
    let announce = primary.seal(
        &candidacy_topic(PRIMARY),
        &Message::Value(crate::value::ValuePublication::Single(Box::default())),
        Codec::Json,
        NOW,
        1,
    );
    receiver
        .admit(
            &candidacy_topic(PRIMARY),
            Some(&tree_of(&announce, Codec::Json)),
            NOW,
        )
        .unwrap();
    let will = tree_of(&primary.will(Codec::Json, 1), Codec::Json);
    assert_eq!(
        receiver.admit(&Topic::Heartbeat(PRIMARY), Some(&will), NOW),
        Ok(())
    );
    // The process restarts within the window; the old Will, replayed, is remembered.
    let restarted = plane(PRIMARY, NOW + 2_000);
    let announce = restarted.seal(
        &candidacy_topic(PRIMARY),
        &Message::Value(crate::value::ValuePublication::Single(Box::default())),
        Codec::Json,
        NOW + 2_000,
        1,
    );
    receiver
        .admit(
            &candidacy_topic(PRIMARY),
            Some(&tree_of(&announce, Codec::Json)),
            NOW + 2_000,
        )
        .unwrap();
    assert_eq!(
        receiver.admit(&Topic::Heartbeat(PRIMARY), Some(&will), NOW + 3_000),
        Err(Refusal::Replayed)
    );
}

#[test]
fn what_is_remembered_is_bounded_by_the_window() {
    let sender = plane(PRIMARY, NOW);
    let mut receiver = plane(SECONDARY, NOW);
    for at in 0..5_000u64 {
        let now = NOW + at * 100;
        let payload = sender.seal(
            &Topic::ResolvHeartbeat,
            &primary_beat(),
            Codec::Json,
            now,
            1,
        );
        receiver
            .admit(
                &Topic::ResolvHeartbeat,
                Some(&tree_of(&payload, Codec::Json)),
                now,
            )
            .unwrap();
    }
    // One beat per 100 ms: 301 in a 30 s window; a clean-up each time that many double.
    let remembered = receiver.remembered();
    assert!((301..=1_024).contains(&remembered), "{remembered}");
}

/// What a controller signs: control topics and its own heartbeats; a value, a request or
/// another node's heartbeat leave as they are (the original's clients read them unchanged).
#[test]
fn only_what_only_controllers_say_is_signed() {
    let primary = plane(PRIMARY, NOW);
    let value = Message::Value(crate::value::ValuePublication::Single(Box::default()));
    let user_value = Topic::Value {
        genre: Genre::User,
        hadd: PRIMARY,
        uuid: "temperature".into(),
    };
    assert_eq!(
        primary.seal(&user_value, &value, Codec::Json, NOW, 1),
        value.encode(Codec::Json)
    );
    let other = Message::Heartbeat(Heartbeat::own(SECONDARY, NodeState::Online));
    assert_eq!(
        primary.seal(&Topic::Heartbeat(SECONDARY), &other, Codec::Json, NOW, 1),
        b"ONLINE".to_vec(),
        "another node's heartbeat stays the bare word"
    );
    let own = Message::Heartbeat(Heartbeat::own(PRIMARY, NodeState::Online));
    let sealed = primary.seal(&Topic::Heartbeat(PRIMARY), &own, Codec::Json, NOW, 1);
    let tree = tree_of(&sealed, Codec::Json);
    assert!(tree.get(SIGNATURE).is_some(), "its own heartbeat is signed");
    assert_eq!(
        Message::from_tree(&Topic::Heartbeat(PRIMARY), &tree).unwrap(),
        own
    );
}

#[test]
fn refusals_say_what_was_wrong() {
    assert_eq!(Refusal::Unsigned.to_string(), "unsigned control message");
    assert_eq!(Refusal::BadSignature.to_string(), "bad signature");
    assert_eq!(
        Refusal::Stale { off_ms: 31_000 }.to_string(),
        "stamp 31000 ms away from now"
    );
    assert_eq!(Refusal::Replayed.to_string(), "replayed");
    assert_eq!(
        Refusal::Malformed.to_string(),
        "signature not written as 64 lower-case hex digits"
    );
    let key = ControlKey::from_secret(SECRET).unwrap();
    assert_eq!(
        format!("{key:?}"),
        "ControlKey(..)",
        "the secret is never printed"
    );
}

/// Issue 21's finding 4: a dispatch believed once came back 7.5 s later with its `sig` in upper
/// case and was believed again (the replay memory held the text, the decoder took any case).
#[test]
fn a_signature_spelled_another_way_is_refused_not_taken_for_new() {
    let sender = plane(PRIMARY, NOW);
    let mut receiver = plane(SECONDARY, NOW);
    let topic = Topic::ResolvHeartbeat;
    let genuine = tree_of(
        &sender.seal(&topic, &primary_beat(), Codec::Json, NOW, 1),
        Codec::Json,
    );
    assert_eq!(receiver.admit(&topic, Some(&genuine), NOW), Ok(()));
    let signature = genuine[SIGNATURE].as_str().unwrap().to_owned();
    // (A signature without a letter is one in 2^64.)
    let letter = signature.find(|c: char| c.is_ascii_lowercase()).unwrap();
    let mut one_letter_upper = signature.clone();
    one_letter_upper[letter..=letter].make_ascii_uppercase();
    let spellings = [
        signature.to_uppercase(),
        one_letter_upper,
        format!(" {signature}"),
        format!("{signature}0"),
        signature[..62].to_owned(),
    ];
    for spelling in spellings {
        let mut replay = genuine.clone();
        replay[SIGNATURE] = Data::from(spelling.clone());
        assert_eq!(
            receiver.admit(&topic, Some(&replay), NOW + 7_500),
            Err(Refusal::Malformed),
            "{spelling}"
        );
    }
    assert_eq!(
        receiver.admit(&topic, Some(&genuine), NOW + 7_500),
        Err(Refusal::Replayed)
    );
}

/// Has `receiver` hear `primary`'s candidacy, sent at `now` during its connection `connection`.
fn hear_candidacy(receiver: &mut ControlPlane, primary: &ControlPlane, connection: u64, now: u64) {
    let value = Message::Value(crate::value::ValuePublication::Single(Box::default()));
    let payload = primary.seal(
        &candidacy_topic(PRIMARY),
        &value,
        Codec::Json,
        now,
        connection,
    );
    let tree = tree_of(&payload, Codec::Json);
    assert_eq!(tree[CONNECTION], Data::from(connection));
    receiver
        .admit(&candidacy_topic(PRIMARY), Some(&tree), now)
        .unwrap();
}

/// Issue 21's finding 5: after one lost connection (its Will believed), the same process's
/// real crash later was refused as a replay, and the takeover waited for the silence.
#[test]
fn a_will_is_believed_once_per_connection() {
    let since = NOW - 60_000;
    let primary = plane(PRIMARY, since);
    let mut receiver = plane(SECONDARY, NOW);
    hear_candidacy(&mut receiver, &primary, 1, NOW);
    let topic = Topic::Heartbeat(PRIMARY);
    let will = |connection| tree_of(&primary.will(Codec::Json, connection), Codec::Json);
    assert_eq!(will(1)[CONNECTION], Data::from(1));

    assert_eq!(receiver.admit(&topic, Some(&will(1)), NOW), Ok(()));
    assert_eq!(
        receiver.admit(&topic, Some(&will(1)), NOW + 1),
        Err(Refusal::Replayed)
    );
    // Reconnected, and lost again before announcing the new connection: believed.
    assert_eq!(receiver.admit(&topic, Some(&will(2)), NOW + 5_000), Ok(()));
    // Back, it announces its fourth connection; the crash of that one is believed, once.
    hear_candidacy(&mut receiver, &primary, 4, NOW + 90_000);
    assert_eq!(
        receiver.admit(&topic, Some(&will(3)), NOW + 95_000),
        Err(Refusal::Replayed),
        "a connection older than the announced one"
    );
    assert_eq!(receiver.admit(&topic, Some(&will(4)), NOW + 95_000), Ok(()));
    assert_eq!(
        receiver.admit(&topic, Some(&will(4)), NOW + 95_001),
        Err(Refusal::Replayed)
    );
}

/// A controller that started after a Will was published has never seen it: replayed to it,
/// the Will of a connection older than the announced one is refused all the same.
#[test]
fn an_old_connections_will_is_refused_by_a_receiver_that_never_heard_it() {
    let since = NOW - 3_600_000;
    let primary = plane(PRIMARY, since);
    let mut newcomer = plane(SECONDARY, NOW);
    hear_candidacy(&mut newcomer, &primary, 2, NOW);
    let old_will = tree_of(&primary.will(Codec::Json, 1), Codec::Json);
    assert_eq!(
        newcomer.admit(&Topic::Heartbeat(PRIMARY), Some(&old_will), NOW + 10),
        Err(Refusal::Replayed)
    );
}
