//! A live view of a Janitoo network, from what any MQTT client can see: controllers with their
//! role and epoch, nodes and their states, last values. Used by `janitoo status` and
//! `janitoo demo`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::tools::show_data;
use janitoo_protocol::{
    Codec, Data, DiscoveryData, Genre, Hadd, HaddTarget, InfoKind, Message, NodeState, Request,
    Topic, ValuePublication,
};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

/// The address the view asks from.
pub const VIEW_HADD: Hadd = Hadd::new(9999, 9991);

#[derive(Debug, Clone, Default)]
struct ControllerRow {
    role: String,
    priority: u64,
    standing: String,
    epoch: u64,
    seen: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
struct NodeRow {
    name: String,
    state: Option<NodeState>,
    by: Option<Hadd>,
    seen: Option<Instant>,
}

/// What has been seen of the network.
#[derive(Debug, Default)]
pub struct NetworkView {
    primary: Option<(Hadd, u64, Instant)>,
    controllers: BTreeMap<Hadd, ControllerRow>,
    nodes: BTreeMap<Hadd, NodeRow>,
    values: BTreeMap<(Hadd, String), (String, Instant)>,
    takeovers: Vec<(Instant, Hadd, u64)>,
}

impl NetworkView {
    /// The primary: its address and epoch.
    pub fn primary(&self) -> Option<(Hadd, u64)> {
        self.primary.map(|(hadd, epoch, _)| (hadd, epoch))
    }

    /// Takes in one message.
    pub fn absorb(&mut self, topic: &str, payload: &[u8]) {
        let Ok(topic) = Topic::parse(topic) else {
            return;
        };
        let Ok(message) = Message::decode(&topic, payload, Codec::Json) else {
            return;
        };
        let now = Instant::now();
        match (&topic, message) {
            (Topic::ResolvHeartbeat, Message::ResolvHeartbeat(beat)) => {
                let epoch = beat.epoch.unwrap_or(0);
                if self
                    .primary
                    .is_none_or(|(hadd, old, _)| hadd != beat.hadd && epoch > old)
                {
                    self.takeovers.push((now, beat.hadd, epoch));
                }
                if self.primary.is_none_or(|(_, old, _)| epoch >= old) {
                    self.primary = Some((beat.hadd, epoch, now));
                }
            }
            (Topic::Heartbeat(hadd), Message::Heartbeat(beat)) => {
                let row = self.nodes.entry(*hadd).or_default();
                row.state = Some(beat.state);
                row.by = None;
                row.seen = Some(now);
            }
            (Topic::HeartbeatOnBehalf, Message::HeartbeatOnBehalf(beat)) => {
                if let HaddTarget::Node(hadd) = beat.target {
                    let row = self.nodes.entry(hadd).or_default();
                    row.state = Some(beat.state);
                    row.by = beat.observer;
                }
            }
            (Topic::Value { hadd, uuid, .. }, Message::Value(ValuePublication::Single(value)))
                if uuid == "network_controller" =>
            {
                let row = self.controllers.entry(*hadd).or_default();
                row.role = value
                    .extra
                    .get("role")
                    .and_then(Data::as_str)
                    .unwrap_or("?")
                    .to_owned();
                row.priority = value
                    .extra
                    .get("priority")
                    .and_then(Data::as_u64)
                    .unwrap_or(0);
                row.epoch = value.extra.get("epoch").and_then(Data::as_u64).unwrap_or(0);
                row.standing = value.data.as_str().unwrap_or("?").to_owned();
                row.seen = Some(now);
            }
            (
                Topic::Value {
                    genre: Genre::User | Genre::Basic,
                    hadd,
                    uuid,
                },
                Message::Value(publication),
            ) => {
                let shown: Vec<String> = publication
                    .instances()
                    .iter()
                    .map(|value| show_data(&value.data, value.units.as_deref()))
                    .collect();
                self.values
                    .insert((*hadd, uuid.clone()), (shown.join(", "), now));
            }
            (_, Message::DiscoveryReply(reply)) => {
                if let DiscoveryData::Nodes(nodes) = reply.data {
                    for (hadd, info) in nodes {
                        self.nodes.entry(hadd).or_default().name = info.name;
                    }
                }
            }
            _ => {}
        }
    }

    /// The view as text.
    pub fn render(&self) -> String {
        let now = Instant::now();
        let ago = |seen: Option<Instant>| {
            seen.map_or("-".to_owned(), |seen| {
                format!("{:.1}s ago", (now - seen).as_secs_f64())
            })
        };
        let mut out = String::new();
        match self.primary {
            Some((hadd, epoch, seen)) => {
                let _ = writeln!(
                    out,
                    "primary: {hadd}  epoch {epoch:#x}  (heartbeat {})",
                    ago(Some(seen))
                );
            }
            None => out.push_str("primary: none seen yet\n"),
        }
        out.push_str(
            "\nnetwork controllers\n  hadd       role       prio  standing   epoch      seen\n",
        );
        for (hadd, row) in &self.controllers {
            let _ = writeln!(
                out,
                "  {hadd}  {:<9}  {:>4}  {:<9}  {:<9}  {}",
                row.role,
                row.priority,
                row.standing,
                format!("{:#x}", row.epoch),
                ago(row.seen)
            );
        }
        out.push_str("\nnodes\n  hadd       state     name                  told by     seen\n");
        for (hadd, row) in self
            .nodes
            .iter()
            .filter(|(hadd, _)| !self.controllers.contains_key(hadd))
        {
            let state = row.state.map_or("?", NodeState::as_str);
            let by = row.by.map_or("itself".to_owned(), |by| by.to_string());
            let _ = writeln!(
                out,
                "  {hadd}  {state:<8}  {:<20}  {by:<10}  {}",
                row.name,
                ago(row.seen)
            );
        }
        out.push_str("\nlast values\n");
        for ((hadd, uuid), (data, seen)) in &self.values {
            let _ = writeln!(out, "  {hadd} {uuid:<14} {data:<24} {}", ago(Some(*seen)));
        }
        if !self.takeovers.is_empty() {
            out.push_str("\ntakeovers\n");
            for (at, hadd, epoch) in self.takeovers.iter().rev().take(5) {
                let _ = writeln!(
                    out,
                    "  {hadd} became primary, epoch {epoch:#x} ({})",
                    ago(Some(*at))
                );
            }
        }
        out
    }
}

/// Connects a watching client to `host:port` and asks every controller for its nodes.
pub async fn watch(host: &str, port: u16) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let id = format!("janitoo-view-{}", std::process::id());
    let mut options = MqttOptions::new(id, host, port);
    options
        .set_max_packet_size(8 << 20, 8 << 20)
        .set_keep_alive(Duration::from_secs(30));
    let (client, event_loop) = AsyncClient::new(options, 1024);
    for filter in [
        "/dhcp/heartbeat/#",
        "/dhcp/resolv/heartbeat",
        "/values/#",
        "/broadcast/reply/#",
        "/dhcp/resolv/broadcast/",
    ] {
        client.subscribe(filter, QoS::AtMostOnce).await?;
    }
    Ok((client, event_loop))
}

/// Asks every controller for its nodes (names for the view).
pub async fn ask_nodes(client: &AsyncClient) {
    let request = Message::Request(Request::info(InfoKind::Nodes, VIEW_HADD));
    let _ = client
        .publish(
            "/broadcast/request",
            QoS::AtMostOnce,
            false,
            request.encode(Codec::Json),
        )
        .await;
}

/// Feeds the view from the event loop for `duration`; false if the broker never answered.
pub async fn feed(view: &mut NetworkView, event_loop: &mut EventLoop, duration: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + duration;
    let mut connected = false;
    while let Ok(event) = tokio::time::timeout_at(deadline, event_loop.poll()).await {
        match event {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                view.absorb(&publish.topic, &publish.payload)
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => connected = true,
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    connected
}
