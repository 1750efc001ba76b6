//! The bridge's outbound lanes on paused time, each drained into its own connection to a
//! broker that takes a millisecond per publication: a flood of retained publications (Home
//! Assistant's discovery) fills only its own lane, every heartbeat queued meanwhile goes out at
//! once, and the retained ones still flow.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use janitoo_actors::bridge::outbound::{
    drain, Encoding, Lanes, NotSent, Outbound, Publisher, Publishers,
};
use janitoo_actors::Metrics;
use janitoo_protocol::{Codec, Hadd, Heartbeat, Message, NodeState, Topic};
use tokio::time::Instant;

/// A broker that takes `pace` per publication, and keeps what it got with when.
struct SlowBroker {
    pace: Duration,
    origin: Instant,
    got: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Publisher for SlowBroker {
    async fn publish(&self, outbound: Outbound) -> Result<(), ()> {
        tokio::time::sleep(self.pace).await;
        let at = self.origin.elapsed();
        self.got.lock().unwrap().push((at, outbound.topic));
        Ok(())
    }

    /// Busy with the flood: never room at once.
    fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
        Err(outbound)
    }
}

#[actix::test]
async fn a_flood_of_retained_publications_delays_no_heartbeat_and_still_flows() {
    tokio::time::pause();
    let metrics = Arc::new(Metrics::default());
    let got = Arc::new(Mutex::new(Vec::new()));
    let origin = Instant::now();
    let broker = || SlowBroker {
        pace: Duration::from_millis(1),
        origin,
        got: got.clone(),
    };
    let encoding = Encoding {
        codec: Codec::Json,
        max_payload: 256 << 10,
        control: None,
        request_key: None,
        connection: Default::default(),
    };
    let publishers = Publishers {
        protocol: broker(),
        retained: broker(),
    };
    let (lanes, queues) = Lanes::new(4096, encoding, publishers, metrics.clone());
    actix::spawn(drain(broker(), queues.protocol, metrics.clone()));
    actix::spawn(drain(broker(), queues.retained, metrics.clone()));

    let mut full = 0;
    for at in 0..10_000 {
        let discovery = Outbound {
            topic: format!("homeassistant/sensor/n{at}/config"),
            payload: b"{}".to_vec(),
            retain: true,
        };
        if lanes.enqueue(discovery) == Err(NotSent::Full) {
            full += 1;
        }
    }
    assert_eq!(full, 10_000 - 4096, "only the retained lane filled");
    let controller = Hadd::new(2, 0);
    let heartbeat = Message::Heartbeat(Heartbeat::own(controller, NodeState::Online));
    let mut queued_at = Vec::new();
    for _ in 0..30 {
        lanes
            .send(&Topic::Heartbeat(controller), &heartbeat, 0)
            .expect("the protocol's lane has room");
        queued_at.push(origin.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The broker works through the rest (a virtual minute at most).
    let accepted = 4096 + 30;
    for _ in 0..600 {
        if metrics.published.get() >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let got = got.lock().unwrap();
    let beats: Vec<Duration> = got
        .iter()
        .filter(|(_, topic)| topic == "/dhcp/heartbeat/0002/0000")
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(beats.len(), 30, "every heartbeat went out");
    for (queued, sent) in queued_at.iter().zip(&beats) {
        // Its own publication (the timer's 1 ms ticks may round it up): behind the thousands of
        // retained ones queued first, it would wait seconds.
        let waited = *sent - *queued;
        assert!(
            waited <= Duration::from_millis(2),
            "a heartbeat waited {waited:?} behind the flood"
        );
    }
    let first_second: Vec<&String> = got
        .iter()
        .filter(|(at, _)| *at <= Duration::from_secs(1))
        .map(|(_, topic)| topic)
        .collect();
    let retained = first_second
        .iter()
        .filter(|topic| topic.starts_with("homeassistant/"))
        .count();
    assert!(
        retained >= 400,
        "the retained lane starved: {retained} of {} in the first second",
        first_second.len()
    );
    assert_eq!(
        got.len() as u64,
        accepted,
        "everything accepted was delivered"
    );
    assert_eq!(metrics.dropped.get(), 10_000 - 4096);
    assert_eq!(metrics.queue_depth.get(), 0);
}
