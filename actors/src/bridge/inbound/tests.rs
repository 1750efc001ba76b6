//! Every branch of the classifier, each a publication and the verdict a user relies on.

use std::sync::Arc;

use janitoo_protocol::control_plane::{ControlKey, ControlPlane, Refusal as ControlRefusal};
use janitoo_protocol::{
    Codec, CommandClass, Genre, Hadd, Message, NodeState, Request, ResolvHeartbeat, Status, Topic,
};
use tokio::time::Instant;

use super::{Ignored, Inbound, Publication, Verdict};
use crate::admission::Admission;
use crate::messages::Via;
use crate::metrics::Metrics;
use crate::value_cache::ValueCache;

const BUS: u16 = 220;
const ASKER: Hadd = Hadd::new(9999, 9990);
const LIMIT: usize = 4 << 10;
const NOW_MS: u64 = 1_800_000_000_000;

fn inbound_with(max_in_flight: usize, control: Option<ControlPlane>) -> Inbound {
    let admission = Admission::new(Arc::new(Metrics::default()), max_in_flight);
    let mut inbound = Inbound::new(
        Codec::Json,
        LIMIT,
        control,
        admission,
        ValueCache::default(),
    );
    inbound.serve(BUS);
    inbound
}

fn inbound() -> Inbound {
    inbound_with(16, None)
}

fn classify(inbound: &mut Inbound, topic: &str, payload: &[u8]) -> Verdict {
    classify_as(inbound, topic, payload, false, false)
}

fn classify_as(
    inbound: &mut Inbound,
    topic: &str,
    payload: &[u8],
    retain: bool,
    congested: bool,
) -> Verdict {
    let publication = Publication {
        topic,
        payload,
        retain,
        signed: false,
    };
    inbound.classify(publication, Instant::now(), NOW_MS, congested)
}

fn get(hadd: Hadd, reply_hadd: Option<Hadd>) -> Vec<u8> {
    let mut request = Request::get(hadd, "name", Genre::Config, CommandClass::CONFIGURATION);
    request.reply_hadd = reply_hadd;
    request.request_id = Some("r-1".into());
    Message::Request(request).encode(Codec::Json)
}

fn resolv_heartbeat() -> Message {
    Message::ResolvHeartbeat(ResolvHeartbeat {
        hadd: Hadd::new(2, 0),
        state: NodeState::Online,
        epoch: Some(7),
    })
}

/// The ignored reason of a verdict, or a panic naming what it was.
fn ignored(verdict: Verdict) -> Ignored {
    match verdict {
        Verdict::Ignore(why) => why,
        other => panic!("expected ignored, got {other:?}"),
    }
}

/// The answer of a verdict: why, where, its status and error.
fn answer(verdict: Verdict) -> (Ignored, Topic, Status, String, Option<String>) {
    let reply = answered(verdict);
    (
        reply.0,
        reply.1,
        reply.2.status(),
        reply.2.error.clone().unwrap_or_default(),
        reply.2.request_id,
    )
}

/// The answer of a verdict: why, where, and the reply itself.
fn answered(verdict: Verdict) -> (Ignored, Topic, janitoo_protocol::ValueReply) {
    match verdict {
        Verdict::Answer { why, topic, reply } => (why, topic, reply),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn a_raw_observers_topics_go_to_it_retained_or_not_unless_oversize() {
    let mut inbound = inbound();
    let home_assistant = inbound.observe_raw(vec!["homeassistant/#".into()]);
    let status = inbound.observe_raw(vec!["homeassistant/status".into(), "ha/+".into()]);
    let verdict = classify_as(&mut inbound, "homeassistant/status", b"online", true, false);
    assert!(matches!(verdict, Verdict::Raw(at) if at == [home_assistant, status]));
    let verdict = classify(&mut inbound, "homeassistant/sensor/x/config", b"{}");
    assert!(matches!(verdict, Verdict::Raw(at) if at == [home_assistant]));
    let big = vec![b'x'; LIMIT + 1];
    assert_eq!(
        ignored(classify(&mut inbound, "ha/state", &big)),
        Ignored::Oversize
    );
    let exactly = vec![b'x'; LIMIT];
    assert!(matches!(
        classify(&mut inbound, "ha/state", &exactly),
        Verdict::Raw(at) if at == [status]
    ));
}

#[test]
fn a_request_of_exactly_the_limit_is_served() {
    let mut inbound = inbound();
    let mut request = Request::set(
        Hadd::new(BUS, 1),
        "name",
        Genre::Config,
        CommandClass::CONFIGURATION,
        "".into(),
    );
    request.reply_hadd = Some(ASKER);
    let base = Message::Request(request.clone()).encode(Codec::Json).len();
    request.data = "x".repeat(LIMIT - base).into();
    let payload = Message::Request(request).encode(Codec::Json);
    assert_eq!(payload.len(), LIMIT);
    let verdict = classify(&mut inbound, "/nodes/0220/0001/request", &payload);
    assert!(
        matches!(verdict, Verdict::Serve { ref requests, .. } if requests.len() == 1),
        "{verdict:?}"
    );
}

#[test]
fn a_retained_protocol_message_is_a_strangers_and_ignored() {
    let mut inbound = inbound();
    inbound.observe();
    let request = get(Hadd::new(BUS, 1), Some(ASKER));
    let verdict = classify_as(
        &mut inbound,
        "/nodes/0220/0001/request",
        &request,
        true,
        false,
    );
    assert_eq!(ignored(verdict), Ignored::Retained);
}

#[test]
fn a_topic_outside_the_protocol_is_ignored() {
    let mut inbound = inbound();
    inbound.observe();
    for topic in [
        "/nodes/0220/request",
        "garden/temperature",
        "/values/user/x",
    ] {
        assert_eq!(
            ignored(classify(&mut inbound, topic, b"ONLINE")),
            Ignored::OffProtocol,
            "{topic}"
        );
    }
}

#[test]
fn an_oversize_request_is_answered_400_where_it_says() {
    let mut inbound = inbound();
    let mut payload = br#"{"reply_hadd":"9999/9990","request_id":"big-1","data":""#.to_vec();
    payload.resize(LIMIT + 1, b'x');
    let (why, topic, status, error, request_id) =
        answer(classify(&mut inbound, "/nodes/0220/0001/request", &payload));
    assert_eq!(
        (why, topic, status, request_id.as_deref()),
        (
            Ignored::Oversize,
            Topic::NodeReply(ASKER),
            Status::BAD_REQUEST,
            Some("big-1")
        )
    );
    assert!(error.contains("max_payload"), "{error}");
    let (_, topic, ..) = answer(classify(&mut inbound, "/broadcast/request", &payload));
    assert_eq!(topic, Topic::BroadcastReply(ASKER));
}

#[test]
fn an_oversize_message_that_is_no_request_or_says_nowhere_is_ignored() {
    let mut inbound = inbound();
    inbound.observe();
    let mut payload = br#"{"reply_hadd":"9999/9990","data":""#.to_vec();
    payload.resize(LIMIT + 1, b'x');
    let value = "/values/user/0220/0001/temperature";
    assert_eq!(
        ignored(classify(&mut inbound, value, &payload)),
        Ignored::Oversize
    );
    let mut nowhere = br#"{"uuid":"name","data":""#.to_vec();
    nowhere.resize(LIMIT + 1, b'x');
    let request = "/nodes/0220/0001/request";
    assert_eq!(
        ignored(classify(&mut inbound, request, &nowhere)),
        Ignored::Oversize
    );
}

fn key() -> ControlKey {
    ControlKey::from_secret(b"the network's secret, 32 bytes!!").unwrap()
}

#[test]
fn on_a_keyed_network_a_control_message_is_believed_only_signed_and_once() {
    let me = Hadd::new(3, 0);
    let mut inbound = inbound_with(16, Some(ControlPlane::new(key(), me, NOW_MS, 10_000)));
    inbound.observe();
    let topic = Topic::ResolvHeartbeat;
    let unsigned = resolv_heartbeat().encode(Codec::Json);
    assert_eq!(
        ignored(classify(&mut inbound, "/dhcp/resolv/heartbeat", &unsigned)),
        Ignored::NotBelieved(ControlRefusal::Unsigned)
    );
    let primary = ControlPlane::new(key(), Hadd::new(2, 0), NOW_MS, 10_000);
    let signed = primary.seal(&topic, &resolv_heartbeat(), Codec::Json, NOW_MS, 1);
    let verdict = classify(&mut inbound, "/dhcp/resolv/heartbeat", &signed);
    assert!(
        matches!(&verdict, Verdict::Observe { topic: Topic::ResolvHeartbeat, message } if *message == resolv_heartbeat()),
        "{verdict:?}"
    );
    assert_eq!(
        ignored(classify(&mut inbound, "/dhcp/resolv/heartbeat", &signed)),
        Ignored::NotBelieved(ControlRefusal::Replayed)
    );
    // What only controllers may say is checked; a node's own heartbeat is not.
    let heartbeat = classify(&mut inbound, "/dhcp/heartbeat/0220/0001", b"ONLINE");
    assert!(
        matches!(heartbeat, Verdict::Observe { .. }),
        "{heartbeat:?}"
    );
}

#[test]
fn a_request_for_a_bus_this_process_does_not_serve_is_unrouted() {
    let mut inbound = inbound();
    let request = get(Hadd::new(221, 1), Some(ASKER));
    assert_eq!(
        ignored(classify(&mut inbound, "/nodes/0221/0001/request", &request)),
        Ignored::Unrouted
    );
}

#[test]
fn an_unreadable_request_is_answered_400_when_it_says_where() {
    let mut inbound = inbound();
    let payload =
        br#"{"uuid":"name","genre":"nonsense","reply_hadd":"9999/9990","request_id":"bad-1"}"#;
    let (why, topic, status, error, request_id) =
        answer(classify(&mut inbound, "/nodes/0220/0001/request", payload));
    assert_eq!(
        (why, topic, status, request_id.as_deref()),
        (
            Ignored::Unreadable,
            Topic::NodeReply(ASKER),
            Status::BAD_REQUEST,
            Some("bad-1")
        )
    );
    assert!(error.contains("genre"), "{error}");
    assert_eq!(
        ignored(classify(
            &mut inbound,
            "/nodes/0220/0001/request",
            b"{not json"
        )),
        Ignored::Unreadable
    );
    let nowhere = br#"{"uuid":"name","genre":"nonsense"}"#;
    assert_eq!(
        ignored(classify(&mut inbound, "/nodes/0220/0001/request", nowhere)),
        Ignored::Unreadable
    );
}

#[test]
fn a_request_for_a_bus_here_is_served_by_it_with_a_ticket() {
    let mut inbound = inbound();
    let node = Hadd::new(BUS, 1);
    let verdict = classify(
        &mut inbound,
        "/nodes/0220/0001/request",
        &get(node, Some(ASKER)),
    );
    let Verdict::Serve { requests, then } = verdict else {
        panic!("{verdict:?}");
    };
    assert!(then.is_none());
    assert_eq!(requests.len(), 1);
    let served = &requests[0];
    assert_eq!((served.ctrl, served.via), (BUS, Via::Node(node)));
    assert_eq!(served.request.uuid, "name");
    assert_eq!(inbound.admission.in_flight(), 1, "in flight until answered");
    drop(requests);
    assert_eq!(inbound.admission.in_flight(), 0);
}

#[test]
fn a_request_beyond_the_limit_is_answered_503_or_dropped() {
    let mut inbound = inbound_with(1, None);
    let node = Hadd::new(BUS, 1);
    let topic = "/nodes/0220/0001/request";
    let first = classify(&mut inbound, topic, &get(node, Some(ASKER)));
    assert!(matches!(first, Verdict::Serve { ref requests, .. } if requests.len() == 1));
    let busy = classify(&mut inbound, topic, &get(node, Some(Hadd::new(9999, 1))));
    let Verdict::Serve { requests, then } = busy else {
        panic!("{busy:?}");
    };
    assert!(requests.is_empty());
    let (why, topic_of_answer, status, error, request_id) = answer(*then.unwrap());
    assert_eq!(
        (why, topic_of_answer, status, request_id.as_deref()),
        (
            Ignored::Shed,
            Topic::NodeReply(Hadd::new(9999, 1)),
            Status::SERVICE_UNAVAILABLE,
            Some("r-1")
        )
    );
    assert!(error.contains("1 requests in flight"), "{error}");
    let again = classify(&mut inbound, topic, &get(node, Some(Hadd::new(9999, 1))));
    let Verdict::Serve { then, .. } = again else {
        panic!("{again:?}");
    };
    let (_, _, reply) = answered(*then.unwrap());
    let echoed = &reply.value;
    assert_eq!(
        (echoed.uuid.as_str(), echoed.hadd, echoed.reply_hadd),
        ("name", Some(node), Some(Hadd::new(9999, 1))),
        "the 503 says which request it refuses"
    );
    let nowhere = classify(&mut inbound, topic, &get(node, None));
    let Verdict::Serve { then, .. } = nowhere else {
        panic!("{nowhere:?}");
    };
    assert_eq!(ignored(*then.unwrap()), Ignored::Shed);
    drop(first);
}

#[test]
fn a_signed_request_is_served_in_the_slots_a_flood_of_new_requesters_cannot_take() {
    let mut inbound = inbound_with(8, None);
    let node = Hadd::new(BUS, 1);
    let topic = "/nodes/0220/0001/request";
    let flood: Vec<Verdict> = (0..7)
        .map(|n| classify(&mut inbound, topic, &get(node, Some(Hadd::new(9000, n)))))
        .collect();
    assert!(flood
        .iter()
        .all(|verdict| matches!(verdict, Verdict::Serve { requests, .. } if requests.len() == 1)));
    let unsigned = classify(&mut inbound, topic, &get(node, Some(Hadd::new(9000, 99))));
    assert!(
        matches!(unsigned, Verdict::Serve { ref requests, then: Some(_) } if requests.is_empty()),
        "{unsigned:?}"
    );
    let publication = Publication {
        topic,
        payload: &get(node, Some(ASKER)),
        retain: false,
        signed: true,
    };
    let signed = inbound.classify(publication, Instant::now(), NOW_MS, false);
    assert!(
        matches!(signed, Verdict::Serve { ref requests, then: None } if requests.len() == 1),
        "{signed:?}"
    );
    drop(flood);
}

#[test]
fn while_congested_a_requester_in_flight_is_dropped_not_answered() {
    let mut inbound = inbound();
    let node = Hadd::new(BUS, 1);
    let topic = "/nodes/0220/0001/request";
    let first = classify_as(&mut inbound, topic, &get(node, Some(ASKER)), false, true);
    assert!(matches!(first, Verdict::Serve { ref requests, .. } if requests.len() == 1));
    let again = classify_as(&mut inbound, topic, &get(node, Some(ASKER)), false, true);
    let Verdict::Serve { requests, then } = again else {
        panic!("{again:?}");
    };
    assert!(requests.is_empty());
    assert_eq!(
        ignored(*then.unwrap()),
        Ignored::Shed,
        "no 503: it would not go out"
    );
    drop(first);
}

#[test]
fn a_broadcast_is_served_by_every_bus_as_far_as_admitted() {
    // 8 in flight at most, 2 of them from any one requester.
    let mut inbound = inbound_with(8, None);
    inbound.serve(221);
    let mut request = Request::get(
        Hadd::new(0, 0),
        "request_info_nodes",
        Genre::Basic,
        CommandClass::CONFIGURATION,
    );
    request.reply_hadd = Some(ASKER);
    let payload = Message::Request(request).encode(Codec::Json);
    let verdict = classify(&mut inbound, "/broadcast/request", &payload);
    let Verdict::Serve { requests, then } = verdict else {
        panic!("{verdict:?}");
    };
    assert!(then.is_none());
    let served: Vec<(u16, Via)> = requests.iter().map(|r| (r.ctrl, r.via)).collect();
    assert_eq!(served, [(BUS, Via::Broadcast), (221, Via::Broadcast)]);
    inbound.serve(222);
    let verdict = classify(&mut inbound, "/broadcast/request", &payload);
    let Verdict::Serve {
        requests: more,
        then,
    } = verdict
    else {
        panic!("{verdict:?}");
    };
    assert!(
        more.is_empty(),
        "the requester's share is held by the first broadcast"
    );
    let (_, topic, status, ..) = answer(*then.unwrap());
    assert_eq!(
        (topic, status),
        (Topic::BroadcastReply(ASKER), Status::SERVICE_UNAVAILABLE)
    );
    drop(requests);
}

#[test]
fn a_broadcast_with_no_bus_here_is_served_by_none() {
    let admission = Admission::new(Arc::new(Metrics::default()), 4);
    let mut inbound = Inbound::new(Codec::Json, LIMIT, None, admission, ValueCache::default());
    let payload = get(Hadd::new(0, 0), Some(ASKER));
    let verdict = classify(&mut inbound, "/broadcast/request", &payload);
    assert!(
        matches!(&verdict, Verdict::Serve { requests, then: None } if requests.is_empty()),
        "{verdict:?}"
    );
}

#[test]
fn the_rest_goes_decoded_to_the_observers_if_any() {
    let mut inbound = inbound();
    let topic = "/dhcp/heartbeat/0220/0001";
    assert_eq!(
        ignored(classify(&mut inbound, topic, b"ONLINE")),
        Ignored::Unobserved
    );
    inbound.observe();
    let verdict = classify(&mut inbound, topic, b"ONLINE");
    let Verdict::Observe { topic, message } = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(topic, Topic::Heartbeat(Hadd::new(BUS, 1)));
    assert!(matches!(message, Message::Heartbeat(beat) if beat.state == NodeState::Online));
    assert_eq!(
        ignored(classify(&mut inbound, "/dhcp/resolv/heartbeat", b"[1,2]")),
        Ignored::Unreadable
    );
}

#[test]
fn with_messagepack_the_originals_json_is_still_read() {
    let admission = Admission::new(Arc::new(Metrics::default()), 4);
    let mut inbound = Inbound::new(
        Codec::MessagePack,
        LIMIT,
        None,
        admission,
        ValueCache::default(),
    );
    inbound.serve(BUS);
    inbound.observe();
    let json = get(Hadd::new(BUS, 1), Some(ASKER));
    let verdict = classify(&mut inbound, "/nodes/0220/0001/request", &json);
    assert!(matches!(verdict, Verdict::Serve { ref requests, .. } if requests.len() == 1));
    let packed = resolv_heartbeat().encode(Codec::MessagePack);
    let verdict = classify(&mut inbound, "/dhcp/resolv/heartbeat", &packed);
    assert!(matches!(verdict, Verdict::Observe { .. }), "{verdict:?}");
    let json = resolv_heartbeat().encode(Codec::Json);
    let verdict = classify(&mut inbound, "/dhcp/resolv/heartbeat", &json);
    assert!(matches!(verdict, Verdict::Observe { .. }), "{verdict:?}");
}

/// A classifier whose cache holds `name` of node 0220/0001, and that cache.
fn with_a_cached_name(max_in_flight: usize) -> (Inbound, ValueCache) {
    let values = ValueCache::default();
    let name = janitoo_protocol::ValueDescriptor {
        uuid: "name".into(),
        genre: Genre::Config,
        data: "Ambiance".into(),
        ..Default::default()
    };
    values.keep(Hadd::new(BUS, 1), name);
    let admission = Admission::new(Arc::new(Metrics::default()), max_in_flight);
    let mut inbound = Inbound::new(Codec::Json, LIMIT, None, admission, values.clone());
    inbound.serve(BUS);
    (inbound, values)
}

#[test]
fn a_get_of_a_cached_value_is_answered_at_once_and_leaves_nothing_in_flight() {
    let (mut inbound, _) = with_a_cached_name(16);
    let verdict = classify(
        &mut inbound,
        "/nodes/0220/0001/request",
        &get(Hadd::new(BUS, 1), Some(ASKER)),
    );
    let Verdict::Answered {
        target,
        request,
        value,
    } = verdict
    else {
        panic!("{verdict:?}");
    };
    assert_eq!(target, Hadd::new(BUS, 1));
    assert_eq!(request.request_id.as_deref(), Some("r-1"));
    assert_eq!(value.data, janitoo_protocol::Data::from("Ambiance"));
    assert_eq!(inbound.admission.in_flight(), 0);
}

#[test]
fn what_the_cache_cannot_answer_goes_to_the_bus() {
    let (mut inbound, _) = with_a_cached_name(16);
    let topic = "/nodes/0220/0001/request";
    let served = |verdict: Verdict| matches!(verdict, Verdict::Serve { ref requests, .. } if requests.len() == 1);
    let mut set = Request::set(
        Hadd::new(BUS, 1),
        "name",
        Genre::Config,
        CommandClass::CONFIGURATION,
        "x".into(),
    );
    set.reply_hadd = Some(ASKER);
    assert!(
        served(classify(
            &mut inbound,
            topic,
            &Message::Request(set).encode(Codec::Json)
        )),
        "a set"
    );
    assert!(
        served(classify(
            &mut inbound,
            "/nodes/0220/0002/request",
            &get(Hadd::new(BUS, 2), Some(ASKER))
        )),
        "another node"
    );
    let mut second = Request::get(
        Hadd::new(BUS, 1),
        "name",
        Genre::Config,
        CommandClass::CONFIGURATION,
    );
    second.index = Some(1);
    assert!(
        served(classify(
            &mut inbound,
            topic,
            &Message::Request(second).encode(Codec::Json)
        )),
        "another instance"
    );
    // A node of another bus named in the request: its own bus would say 404, not the cache.
    inbound.serve(221);
    let elsewhere = get(Hadd::new(BUS, 1), Some(ASKER));
    assert!(served(classify(
        &mut inbound,
        "/nodes/0221/0001/request",
        &elsewhere
    )));
}

#[test]
fn a_get_of_a_cached_value_counts_against_the_limit() {
    let (mut inbound, _) = with_a_cached_name(1);
    let topic = "/nodes/0220/0001/request";
    let held = classify(
        &mut inbound,
        "/nodes/0220/0002/request",
        &get(Hadd::new(BUS, 2), Some(ASKER)),
    );
    assert!(matches!(held, Verdict::Serve { ref requests, .. } if requests.len() == 1));
    let (why, _, status, ..) = answer(classify(
        &mut inbound,
        topic,
        &get(Hadd::new(BUS, 1), Some(ASKER)),
    ));
    assert_eq!((why, status), (Ignored::Shed, Status::SERVICE_UNAVAILABLE));
    drop(held);
    assert!(matches!(
        classify(&mut inbound, topic, &get(Hadd::new(BUS, 1), Some(ASKER))),
        Verdict::Answered { .. }
    ));
}

/// MessagePack text of `text` (shorter than 32 bytes).
fn packed_text(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xa0 | text.len() as u8];
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// A MessagePack set request of `name`, to be answered to `ASKER`, with `data` as given.
fn packed_set(data: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x85];
    for (key, value) in [
        ("uuid", "name"),
        ("op", "set"),
        ("reply_hadd", "9999/9990"),
        ("request_id", "packed-1"),
    ] {
        payload.extend(packed_text(key));
        payload.extend(packed_text(value));
    }
    payload.extend(packed_text("data"));
    payload.extend_from_slice(data);
    payload
}

/// Issue 21's finding 7: MessagePack requests whose `data` is bin, ext or a map with integer
/// keys got no answer at all; they are answered 400, naming the field.
#[test]
fn a_messagepack_request_whose_data_does_not_fit_is_answered_400_naming_it() {
    let admission = Admission::new(Arc::new(Metrics::default()), 4);
    let mut inbound = Inbound::new(
        Codec::MessagePack,
        LIMIT,
        None,
        admission,
        ValueCache::default(),
    );
    inbound.serve(BUS);
    let cases: [(&[u8], &str); 4] = [
        (
            &[0xc4, 0x02, 0x01, 0x02],
            "field data: binary data (MessagePack bin)",
        ),
        (&[0xd4, 0x01, 0x00], "field data: a MessagePack ext type"),
        (
            &[0x81, 0x01, 0xa1, b'x'],
            "field data: a map key that is not text (1)",
        ),
        (
            &[0x91, 0x81, 0xa1, b'v', 0xc4, 0x00],
            "field data[0].v: binary data",
        ),
    ];
    for (data, named) in cases {
        let payload = packed_set(data);
        let (why, topic, status, error, request_id) =
            answer(classify(&mut inbound, "/nodes/0220/0001/request", &payload));
        assert_eq!(
            (why, topic, status, request_id.as_deref()),
            (
                Ignored::Unreadable,
                Topic::NodeReply(ASKER),
                Status::BAD_REQUEST,
                Some("packed-1")
            ),
            "{named}"
        );
        assert!(error.contains(named), "{error} does not name {named}");
    }
}
