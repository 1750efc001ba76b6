//! Bad input never panics and never decodes silently wrong: garbage bytes and arbitrary JSON
//! are rejected (or accepted) without a panic, and a field of the wrong type is named in the
//! error.

mod common;

use janitoo_protocol::{Codec, Data, Message, ProtocolError, Topic};
use proptest::prelude::*;
use proptest::sample::select;

fn decode_everywhere(payload: &[u8]) {
    for topic in common::every_topic_family() {
        for codec in [Codec::Json, Codec::MessagePack] {
            if let Err(err) = Message::decode(&topic, payload, codec) {
                assert!(!err.to_string().is_empty());
            }
        }
    }
}

/// Replaces `key` of the payload object with `wrong`.
fn with_field(tree: &Data, key: &str, wrong: Data) -> Data {
    let mut tree = tree.clone();
    tree.as_object_mut().unwrap().insert(key.to_owned(), wrong);
    tree
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 50_000, ..ProptestConfig::default() })]

    /// 50,000 random byte strings, each tried on every topic family in both codecs.
    #[test]
    fn arbitrary_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..96)) {
        decode_everywhere(&payload);
    }

    /// 50,000 random JSON documents, each tried on every topic family in both codecs; when an
    /// object is refused for one of its fields, the error names a field.
    #[test]
    fn arbitrary_json_never_panics(tree in common::data()) {
        for codec in [Codec::Json, Codec::MessagePack] {
            let payload = codec.encode_tree(&tree);
            for topic in common::every_topic_family() {
                match Message::decode(&topic, &payload, codec) {
                    Ok(_) => {}
                    Err(ProtocolError::Malformed { .. }) | Err(ProtocolError::InvalidField { .. })
                    | Err(ProtocolError::MissingField { .. }) => {}
                    Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    /// A valid message with one of its typed fields replaced by a value of the wrong type is
    /// refused, and the error names that field.
    #[test]
    fn a_field_of_the_wrong_type_is_named(
        (topic, message) in common::topic_and_message(),
        wrong in select(vec![
            Data::from("not-a-number"),
            serde_json::json!({"nested": true}),
            serde_json::json!([1, 2]),
            Data::from(-7),
        ]),
    ) {
        let tree = message.to_tree();
        let Some(object) = tree.as_object() else { return Ok(()) };
        for key in typed_fields(&topic) {
            if !object.contains_key(*key) || accepts(&topic, key, &wrong) {
                continue;
            }
            let bad = with_field(&tree, key, wrong.clone());
            let err = Message::from_tree(&topic, &bad).expect_err(key);
            let field = err.field().unwrap_or_default().to_owned();
            prop_assert!(field.contains(key), "{key}: error {err} names {field:?}");
        }
    }
}

/// The fields whose type each payload checks.
fn typed_fields(topic: &Topic) -> &'static [&'static str] {
    match topic {
        Topic::Heartbeat(_) | Topic::HeartbeatOnBehalf => {
            &["add_ctrl", "add_node", "state", "epoch", "observer"]
        }
        Topic::ResolvHeartbeat => &["add_ctrl", "add_node", "state", "epoch"],
        Topic::NodeRequest(_) | Topic::BroadcastRequest => &[
            "op",
            "uuid",
            "cmd_class",
            "genre",
            "reply_hadd",
            "hadd",
            "index",
        ],
        Topic::NodeReply(_) | Topic::Value { .. } => &[
            "uuid",
            "hadd",
            "index",
            "genre",
            "type",
            "cmd_class",
            "label",
            "min",
            "max",
            "list_items",
            "poll_delay",
            "reply_hadd",
            "status",
        ],
        Topic::BroadcastReply(_) | Topic::ResolvBroadcast => {
            &["uuid", "reply_hadd", "status", "data"]
        }
        Topic::Lease(_) => &["rep_uuid", "add_ctrl", "add_node", "options"],
        Topic::ReplyByUuid(_) => &["msg_status", "rep_uuid", "name", "state", "last_seen"],
        _ => &[],
    }
}

/// Whether `wrong` is in fact acceptable for `key` (the original is tolerant: numbers as text,
/// -1 for "every node", and so on).
fn accepts(topic: &Topic, key: &str, wrong: &Data) -> bool {
    let lease = matches!(topic, Topic::Lease(_) | Topic::ReplyByUuid(_));
    match (key, wrong) {
        // Lease parts are any integer, or text kept for the server's 400 answer.
        ("add_ctrl" | "add_node", Data::String(_) | Data::Number(_)) if lease => true,
        ("min" | "max" | "poll_delay", Data::Number(_)) => true,
        ("uuid" | "rep_uuid" | "name" | "label", Data::String(_)) => true,
        ("add_node", Data::Number(n)) => n.as_i64() == Some(-1),
        // Texts and lists.
        ("list_items", Data::String(_) | Data::Array(_)) => true,
        ("data", Data::Object(_)) => true,
        ("options", Data::Object(_)) => true,
        ("last_seen", Data::String(_)) => true,
        _ => false,
    }
}

#[test]
fn deeply_nested_payloads_are_refused_not_overflowed() {
    let deep_json = "[".repeat(100_000);
    decode_everywhere(deep_json.as_bytes());
    // MessagePack: 100,000 nested one-element arrays.
    let deep_msgpack = vec![0x91u8; 100_000];
    decode_everywhere(&deep_msgpack);
}

#[test]
fn trailing_bytes_after_a_messagepack_message_are_refused() {
    let mut payload = Codec::MessagePack.encode_tree(&serde_json::json!({"uuid": "x"}));
    payload.push(0xc0);
    let err = Codec::MessagePack.decode_tree(&payload).unwrap_err();
    assert!(err.to_string().contains("left after"), "{err}");
}

/// A request of the wrong shape that still says where to answer gets a 400 there, naming the
/// field that was wrong and echoing its request id.
#[test]
fn an_unreadable_request_with_a_reply_hadd_is_answered_400_naming_the_field() {
    use janitoo_protocol::reply::Status;
    use janitoo_protocol::request::refusal_of_unreadable;
    let base = r#""op":"get","uuid":"name","cmd_class":112,"genre":3,"reply_hadd":"0999/0001","request_id":"r1""#;
    for (field, value) in [
        ("genre", r#""x""#),
        ("cmd_class", r#""x""#),
        ("index", "-1"),
        ("op", r#""x""#),
        ("uuid", "1"),
    ] {
        let payload = format!("{{{base},\"{field}\":{value}}}");
        let err = janitoo_protocol::Message::decode_on(
            "/nodes/0220/0001/request",
            payload.as_bytes(),
            janitoo_protocol::Codec::Json,
        )
        .expect_err(&format!("{payload} must not decode"));
        let tree = janitoo_protocol::Codec::Json
            .decode_tree(payload.as_bytes())
            .unwrap();
        let (to, reply) = refusal_of_unreadable(&tree, &err).expect("an answer is owed");
        assert_eq!(to.to_string(), "0999/0001");
        assert_eq!(reply.status, Some(Status::BAD_REQUEST));
        assert_eq!(reply.request_id.as_deref(), Some("r1"));
        let error = reply.error.unwrap();
        assert!(error.contains(field), "{error:?} does not name {field}");
    }
    let nowhere = janitoo_protocol::Codec::Json
        .decode_tree(br#"{"op":"x","uuid":"name"}"#)
        .unwrap();
    let err = janitoo_protocol::ProtocolError::UnknownTopic {
        topic: String::new(),
    };
    assert!(refusal_of_unreadable(&nowhere, &err).is_none());
}

proptest! {
    /// Date texts from a stranger (lease replies' `{"$date": "..."}`): never a panic, nor an
    /// overflow, whatever the numbers.
    #[test]
    fn iso_dates_never_panic(
        text in "[0-9]{1,20}-[0-9]{1,3}-[0-9]{1,3}[T ][0-9-]{1,3}:[0-9]{1,3}(:[0-9]{1,3}(\\.[0-9]{0,12})?)?(Z|[+-][0-9]{1,4}(:[0-9]{1,4})?)?",
        noise in ".{0,40}",
    ) {
        let _ = janitoo_protocol::lease::iso_millis(&text);
        let _ = janitoo_protocol::lease::iso_millis(&noise);
    }
}
