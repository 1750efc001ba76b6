//! Every message survives encode then decode unchanged, in both codecs.

mod common;

use janitoo_protocol::{Codec, Message};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    /// JSON: what we write, we read back as the same message.
    #[test]
    fn every_message_round_trips_through_json((topic, message) in common::topic_and_message()) {
        let payload = message.encode(Codec::Json);
        let decoded = Message::decode(&topic, &payload, Codec::Json);
        prop_assert_eq!(decoded, Ok(message), "payload {}", String::from_utf8_lossy(&payload));
    }

    /// MessagePack: the same.
    #[test]
    fn every_message_round_trips_through_messagepack((topic, message) in common::topic_and_message()) {
        let payload = message.encode(Codec::MessagePack);
        prop_assert_eq!(Message::decode(&topic, &payload, Codec::MessagePack), Ok(message));
    }

    /// Both codecs carry the same tree, so a JSON message re-encoded in MessagePack is equal.
    #[test]
    fn codecs_agree((topic, message) in common::topic_and_message()) {
        let from_json = Message::decode(&topic, &message.encode(Codec::Json), Codec::Json).unwrap();
        let from_msgpack =
            Message::decode(&topic, &message.encode(Codec::MessagePack), Codec::MessagePack).unwrap();
        prop_assert_eq!(from_json, from_msgpack);
    }
}
