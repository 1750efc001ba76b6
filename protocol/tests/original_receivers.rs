//! What the original's receivers read, as fixtures (`tests/fixtures/original/`), and our messages
//! against them:
//! - requests: the command class its `on_request` wants, and where it answers;
//! - systems and commands answers: the two-level shape its `add_systems` reads;
//! - its primary's resolv heartbeat cadence, as our election learns it.

use std::path::PathBuf;
use std::time::Duration;

use janitoo_protocol::election::{Election, ElectionAction, ElectionConfig, Rank, Role};
use janitoo_protocol::network_map::NetworkMap;
use janitoo_protocol::{
    split_trace_line, Codec, CommandClass, Data, Hadd, InfoKind, Message, Request, Topic,
};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/original")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn decoded(line: &str) -> (Topic, Message, Data) {
    let (topic, payload) = split_trace_line(line).unwrap();
    let (topic, message) = Message::decode_on(topic, payload.as_bytes(), Codec::Json).unwrap();
    (topic, message, serde_json::from_str(payload).unwrap())
}

/// The original's `on_request` for a get or set: whether it answers a request for a value of
/// `genre` whose own command class is `value_class`, and on which topics.
fn original_answers_on(request: &Data, value_class: u64) -> Vec<String> {
    let hadd = request["hadd"].as_str().unwrap();
    let uuid = request["uuid"].as_str().unwrap();
    let class = request["cmd_class"].as_u64().unwrap();
    let genre = match request["genre"].as_u64() {
        Some(1) => "basic",
        Some(2) => "user",
        Some(3) => "config",
        Some(4) => "system",
        Some(5) => "command",
        _ => return Vec::new(),
    };
    let values = format!("/values/{genre}/{hadd}/{uuid}");
    match (class, genre) {
        (112, "config" | "system") => vec![values],
        (_, "basic" | "user" | "command") if class == value_class => {
            let reply = format!("/nodes/{}/reply", request["reply_hadd"].as_str().unwrap());
            vec![reply, values]
        }
        _ => Vec::new(),
    }
}

#[test]
fn our_requests_carry_the_command_class_the_originals_on_request_answers() {
    let text = fixture("on_request.trace");
    let lines: Vec<(Topic, Message, Data)> = text.lines().map(decoded).collect();
    let mut checked = 0;
    for (at, (_, message, tree)) in lines.iter().enumerate() {
        let Message::Request(request) = message else {
            continue;
        };
        // Its answers follow it in the recording: they say the value's own command class.
        let answers: Vec<&(Topic, Message, Data)> = lines[at + 1..]
            .iter()
            .take_while(|(_, message, _)| !matches!(message, Message::Request(_)))
            .collect();
        let value_class = answers[0].2["cmd_class"].as_u64().unwrap();
        let topics: Vec<String> = answers.iter().map(|(t, _, _)| t.to_string()).collect();
        assert_eq!(original_answers_on(tree, value_class), topics, "{tree}");

        // What our tools send for the same value.
        let class =
            CommandClass::for_request(request.genre, Some(CommandClass(value_class as u16)));
        let hadd = request.hadd.unwrap();
        let ours = match &request.data {
            Data::Null => Request::get(hadd, &request.uuid, request.genre, class),
            data => Request::set(hadd, &request.uuid, request.genre, class, data.clone()),
        };
        let mut ours = Message::Request(ours).to_tree();
        ours["reply_hadd"] = tree["reply_hadd"].clone();
        assert_eq!(original_answers_on(&ours, value_class), topics, "{ours}");
        checked += 1;
    }
    assert_eq!(
        checked, 5,
        "config get and set, system get and set, basic get"
    );
    // With the wrong class, the original answers nothing: what ours sent before.
    let (_, _, basic) = decoded(text.lines().find(|l| l.contains("\"load\"")).unwrap());
    let mut wrong = basic.clone();
    wrong["cmd_class"] = 0.into();
    assert!(original_answers_on(&wrong, 49).is_empty());
}

/// The original's `add_systems` (after its `normalize_request_info_nodes`): every value of
/// `{hadd: {uuid: valuedict}}` is a dict with its `hadd` and `uuid`; anything else raises and
/// the whole message is dropped.
fn original_add_systems(data: &Data) -> Result<usize, String> {
    let data = if data.get("hadd").is_some() {
        serde_json::json!({ "0": data })
    } else {
        data.clone()
    };
    let mut stored = 0;
    for (hadd, per_node) in data.as_object().ok_or("data is not a dict")? {
        for (uuid, value) in per_node.as_object().ok_or(format!("{hadd}: not a dict"))? {
            for field in ["hadd", "uuid"] {
                if value.get(field).and_then(Data::as_str).is_none() {
                    return Err(format!("KeyError: '{field}' at {hadd}/{uuid}"));
                }
            }
            stored += 1;
        }
    }
    Ok(stored)
}

#[test]
fn our_systems_and_commands_answers_are_what_the_originals_add_systems_reads() {
    // The model takes what the original sends (its commands answer is empty).
    let stored: usize = fixture("add_systems_input.trace")
        .lines()
        .map(|line| original_add_systems(&decoded(line).2["data"]).unwrap())
        .sum();
    assert!(stored > 0);
    // Our map of a process of ours (metrics with an instance per actor kind beside single
    // values), as our primary answers a resolv request, or a node a discovery.
    let ours = r#"{"uuid": "request_info_systems", "cmd_class": 20480, "genre": 4,
        "reply_hadd": "0002/0000", "data": {"0220/0000": {
            "heartbeat": {"0": {"uuid": "heartbeat", "genre": 4, "cmd_class": 112, "data": 30}},
            "actor_handled": {"0": {"uuid": "actor_handled", "genre": 4, "cmd_class": 112, "data": 7},
                              "1": {"uuid": "actor_handled", "genre": 4, "cmd_class": 112, "data": 9}}},
          "0221/0001": {"config_timeout": {"3": {"uuid": "config_timeout", "genre": 4, "data": 5}}}}}"#;
    let topic = Topic::parse("/dhcp/resolv/reply/0002/0000").unwrap();
    let message = Message::decode(&topic, ours.as_bytes(), Codec::Json).unwrap();
    let Message::DiscoveryReply(reply) = &message else {
        panic!("{message:?}");
    };
    let mut map = NetworkMap::new();
    map.merge_discovery(reply);
    for kind in [InfoKind::Systems, InfoKind::Commands] {
        let mut rebuilt = NetworkMap::new();
        for answer in map.discovery_replies(kind, Some(Hadd::new(2, 0))) {
            let tree = Message::DiscoveryReply(answer.clone()).to_tree();
            let stored = original_add_systems(&tree["data"]).unwrap();
            if kind == InfoKind::Systems {
                assert_eq!(stored, 3, "{tree}");
                let multi = &tree["data"]["0220/0000"]["actor_handled"];
                assert_eq!(multi["data"], 7, "the first instance, flat");
                assert_eq!(multi["instances"]["1"]["data"], 9, "every instance beside");
                let single = &tree["data"]["0221/0001"]["config_timeout"];
                assert_eq!(
                    (single["hadd"].as_str(), single["index"].as_u64()),
                    (Some("0221/0001"), Some(3))
                );
                assert!(
                    single.get("instances").is_none(),
                    "a single instance is the original's flat dict, nothing added: {single}"
                );
            }
            // Ours read back every instance.
            let again = Message::decode(
                &topic,
                &Message::DiscoveryReply(answer).encode(Codec::Json),
                Codec::Json,
            )
            .unwrap();
            let Message::DiscoveryReply(again) = again else {
                panic!()
            };
            rebuilt.merge_discovery(&again);
        }
        if kind == InfoKind::Systems {
            assert_eq!(rebuilt, map);
        }
    }
    // Users keep the original's three levels, index maps even for a single instance.
    let user = r#"{"uuid": "request_info_users", "cmd_class": 20480, "genre": 4, "data":
        {"0220/0001": {"temperature": {"0": {"uuid": "temperature", "genre": 2, "data": 20}}}}}"#;
    let message = Message::decode(&topic, user.as_bytes(), Codec::Json).unwrap();
    assert_eq!(
        message.to_tree()["data"]["0220/0001"]["temperature"]["0"]["data"],
        20
    );
}

#[test]
fn an_original_primarys_cadence_is_learned_from_its_heartbeats() {
    let beats: Vec<(Duration, Hadd, Option<u64>)> = fixture("resolv_heartbeat_cadence.trace")
        .lines()
        .map(|line| {
            let (seconds, rest) = line.split_once(' ').unwrap();
            let (_, message, _) = decoded(rest);
            let Message::ResolvHeartbeat(beat) = message else {
                panic!("{line}");
            };
            (
                Duration::from_secs(seconds.parse().unwrap()),
                beat.hadd,
                beat.epoch,
            )
        })
        .collect();
    assert!(
        beats.iter().all(|(_, _, epoch)| epoch.is_none()),
        "the original sends none"
    );
    let rank = Rank {
        role: Role::Secondary,
        priority: 5,
    };
    let config = ElectionConfig {
        original_primary: true,
        ..ElectionConfig::default()
    };
    let mut ours = Election::new(Hadd::new(2, 0), rank, config, Duration::ZERO);
    ours.on_connected(Duration::ZERO);
    let last = beats.last().unwrap().0;
    let mut beats = beats.into_iter().peekable();
    let mut now = Duration::ZERO;
    let claimed_at = loop {
        while let Some((_, hadd, epoch)) = beats.next_if(|(at, _, _)| *at <= now) {
            ours.on_primary_heartbeat(hadd, epoch, now);
        }
        let actions = ours.on_tick(now);
        if actions
            .iter()
            .any(|a| matches!(a, ElectionAction::BecomePrimary { .. }))
        {
            break now;
        }
        assert!(now < last + Duration::from_secs(60), "never taken over");
        now += Duration::from_millis(100);
    };
    assert_eq!(ours.original_cadence(), Duration::from_secs(15));
    assert!(
        claimed_at > last + Duration::from_secs(45),
        "{claimed_at:?}"
    );
    assert!(
        claimed_at <= last + Duration::from_secs(46),
        "{claimed_at:?}"
    );
}
