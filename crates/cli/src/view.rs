//! A live view of a Janitoo network, from what any MQTT client can see: controllers with their
//! role and epoch, nodes and their states, last values. Used by `janitoo status` and
//! `janitoo demo`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::tools::show_data;
use janitoo_protocol::control_plane::{ControlKey, ControlPlane, DEFAULT_WINDOW_MS, SIGNATURE};
use janitoo_protocol::duplicate::{SHARED_ADDRESS, SHARED_SHOWN_FOR};
use janitoo_protocol::topic::filters;
use janitoo_protocol::view::{epoch_of, primary_for, Change};
use janitoo_protocol::{Codec, Genre, Hadd, InfoKind, Message, NodeState, Request, Topic};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};

/// The address the view asks from.
pub const VIEW_HADD: Hadd = Hadd::new(9999, 9991);

/// What has been seen of the network: the protocol's [`janitoo_protocol::view::NetworkView`]
/// (the same model and fencing as the network core's and the web manager's), plus when things
/// were seen, for display.
#[derive(Debug)]
pub struct NetworkView {
    origin: Instant,
    view: janitoo_protocol::view::NetworkView,
    primary_heard: Option<Instant>,
    values: BTreeMap<(Hadd, String), (String, Instant)>,
    /// Takeovers: when, who, which epoch; heard while watching, or told by the primary's map.
    takeovers: Vec<(Instant, Hadd, u64)>,
    /// On a keyed network: what only controllers may say is believed signed only.
    control: Option<ControlPlane>,
    refused: u64,
    /// Whether the primary's last heartbeat was signed (a keyed network), as far as seen.
    primary_signed: Option<bool>,
    /// Nodes a process said another process beats on too, and when (known nodes only).
    shared: BTreeMap<Hadd, Instant>,
}

impl Default for NetworkView {
    fn default() -> Self {
        NetworkView {
            origin: Instant::now(),
            // Primaries beat every second by default: a jump is believed repeated 0.5 s on.
            view: janitoo_protocol::view::NetworkView::new(Duration::from_millis(500)),
            primary_heard: None,
            values: BTreeMap::new(),
            takeovers: Vec::new(),
            control: None,
            refused: 0,
            primary_signed: None,
            shared: BTreeMap::new(),
        }
    }
}

impl NetworkView {
    /// A view of a keyed network: control messages not signed with `key` (or stale, or
    /// replayed) are left out, and counted.
    pub fn keyed(key: ControlKey) -> NetworkView {
        let now = janitoo_config::clock::wall_clock_ms();
        NetworkView {
            control: Some(ControlPlane::new(key, VIEW_HADD, now, DEFAULT_WINDOW_MS)),
            ..NetworkView::default()
        }
    }
}

impl NetworkView {
    /// The primary: its address and epoch.
    pub fn primary(&self) -> Option<(Hadd, u64)> {
        self.view.primary()
    }

    /// Takes in one message.
    pub fn absorb(&mut self, topic: &str, payload: &[u8]) {
        let Ok(topic) = Topic::parse(topic) else {
            return;
        };
        // A control message is decoded once: its tree is checked, then read.
        let mut checked = None;
        if let Some(control) = &mut self.control {
            if control.checks(&topic) {
                let tree = Codec::Json
                    .decode_tree(payload)
                    .or_else(|_| Codec::MessagePack.decode_tree(payload))
                    .ok();
                let wall = janitoo_config::clock::wall_clock_ms();
                if control.admit(&topic, tree.as_ref(), wall).is_err() {
                    self.refused += 1;
                    return;
                }
                checked = tree;
            }
        }
        let decoded = match &checked {
            Some(tree) => Message::from_tree(&topic, tree),
            None => Message::decode(&topic, payload, Codec::Json)
                .or_else(|_| Message::decode(&topic, payload, Codec::MessagePack)),
        };
        let Ok(message) = decoded else {
            return;
        };
        let now = Instant::now();
        let known = self.primary().is_some();
        for change in self.view.apply(&topic, &message, now - self.origin) {
            // The first primary heard was primary before: its map says since when.
            if let (Change::Primary { hadd, epoch }, true) = (change, known) {
                self.takeovers.push((now, hadd, epoch));
            }
        }
        if let (Topic::ResolvReply(_), Message::DiscoveryReply(reply)) = (&topic, &message) {
            self.note_claim(reply, now);
        }
        match (&topic, message) {
            (Topic::ResolvHeartbeat, Message::ResolvHeartbeat(beat))
                if self.primary().is_some_and(|(hadd, _)| hadd == beat.hadd) =>
            {
                self.primary_heard = Some(now);
                self.primary_signed = Some(match &checked {
                    Some(_) => true,
                    None => is_signed(payload),
                });
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
            (
                Topic::Value {
                    genre: Genre::System,
                    hadd,
                    uuid,
                },
                Message::Value(_),
            ) if uuid == SHARED_ADDRESS && self.view.nodes().contains_key(hadd) => {
                self.shared.insert(*hadd, now);
            }
            _ => {}
        }
    }

    /// A map answer of the primary tells how long it has held its epoch: the takeover, if not
    /// heard.
    fn note_claim(&mut self, reply: &janitoo_protocol::DiscoveryReply, now: Instant) {
        let (Some(epoch), Some(held)) = (epoch_of(reply), primary_for(reply)) else {
            return;
        };
        // Our epochs name their claimant in their low bits; an original primary sends none.
        let primary = match self.primary() {
            Some((primary, current)) if current == epoch => primary,
            None if epoch > 0 => Hadd::new((epoch & 0xffff) as u16, 0),
            _ => return,
        };
        if self.takeovers.iter().any(|(_, _, known)| *known == epoch) {
            return;
        }
        let at = now.checked_sub(held).unwrap_or(self.origin);
        self.takeovers.push((at, primary, epoch));
        self.takeovers.sort_by_key(|(at, _, _)| *at);
    }

    /// The view as text.
    pub fn render(&self) -> String {
        let now = Instant::now();
        let ago = |seen: Option<Instant>| {
            seen.map_or("-".to_owned(), |seen| {
                format!("{:.1}s ago", (now - seen).as_secs_f64())
            })
        };
        let at = |heard: Option<Duration>| heard.map(|heard| self.origin + heard);
        let mut out = String::new();
        match (self.primary_signed, &self.control) {
            (Some(false), _) => out.push_str(
                "warning: the primary's heartbeats are unsigned: this network has no key, and \
                 anyone who can publish on the broker can take the primary or tell false node \
                 states (`janitoo network-key FILE`; README, \"A signed control plane\")\n",
            ),
            (Some(true), None) => out.push_str(
                "the network is keyed: give its key (--network-key FILE, or --config) to check \
                 the signatures\n",
            ),
            _ => {}
        }
        if self.refused > 0 {
            let _ = writeln!(
                out,
                "{} control messages refused: unsigned, badly signed, stale or replayed",
                self.refused
            );
        }
        match self.primary() {
            Some((hadd, epoch)) => {
                let since = self
                    .takeovers
                    .iter()
                    .rev()
                    .find(|(_, _, claimed)| *claimed == epoch)
                    .map_or(String::new(), |(at, _, _)| {
                        format!(", primary for {}", span(now.saturating_duration_since(*at)))
                    });
                let original = if epoch == 0 {
                    ", the original's: no epoch"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "primary: {hadd}  epoch {epoch:#x}  (heartbeat {}{since}{original})",
                    ago(self.primary_heard)
                );
            }
            None => match self.view.original_primary() {
                Some(hadd) => {
                    let _ = writeln!(
                        out,
                        "primary: {hadd}  the original's janitoo_dhcp, named by its map (its \
                         heartbeat comes every 15 s, without epoch: none heard yet)"
                    );
                }
                None => out.push_str("primary: none seen yet\n"),
            },
        }
        out.push_str(
            "\nnetwork controllers\n  hadd       role       prio  standing   epoch      seen\n",
        );
        let primary = self.primary().map(|(hadd, _)| hadd);
        for (hadd, status) in self.view.controllers() {
            let candidacy = &status.candidacy;
            let standing = match primary {
                Some(primary) if primary == *hadd => "primary",
                Some(_) => "secondary",
                None => candidacy.standing(),
            };
            let _ = writeln!(
                out,
                "  {hadd}  {:<9}  {:>4}  {:<9}  {:<9}  {}",
                candidacy.rank.map_or("?", |rank| rank.role.as_str()),
                candidacy.rank.map_or(0, |rank| rank.priority),
                standing,
                format!("{:#x}", candidacy.epoch),
                ago(at(Some(status.heard)))
            );
        }
        out.push_str("\nnodes\n  hadd       state     name                  told by     seen\n");
        for (hadd, status) in self
            .view
            .nodes()
            .iter()
            .filter(|(hadd, _)| !self.view.controllers().contains_key(hadd))
        {
            let state = status.state.map_or("?", NodeState::as_str);
            let by = status
                .told_by
                .map_or("itself".to_owned(), |by| by.to_string());
            let name = self
                .view
                .map()
                .node(*hadd)
                .map_or("", |info| info.name.as_str());
            let _ = writeln!(
                out,
                "  {hadd}  {state:<8}  {name:<20}  {by:<10}  {}",
                ago(at(status.heard))
            );
            let shared = self
                .shared
                .get(hadd)
                .is_some_and(|said| now.saturating_duration_since(*said) < SHARED_SHOWN_FOR);
            if shared {
                let _ = writeln!(
                    out,
                    "  {hadd}  ! two processes beat on this address: its state may be the other's"
                );
            }
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
                    "  {hadd} became primary, epoch {epoch:#x} ({} ago)",
                    span(now.saturating_duration_since(*at))
                );
            }
        }
        out
    }
}

/// A duration for people: `2.9s`, `5m 02s`, `3h 12m`, `2d 4h`.
fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{:.1}s", duration.as_secs_f64()),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..86400 => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86400, seconds % 86400 / 3600),
    }
}

/// A view's connection: subscribed to what the view shows (again at each connection), and
/// moving to the next broker of the list when its broker fails.
pub struct Watch {
    /// The client, to ask.
    pub client: AsyncClient,
    event_loop: EventLoop,
    mqtt: janitoo_actors::MqttSettings,
    id: String,
    position: usize,
}

impl Watch {
    /// A connection to the first broker of `broker`'s list (it connects when fed).
    pub fn start(broker: &crate::connect::BrokerSettings) -> Watch {
        let id = format!("janitoo-view-{}", std::process::id());
        let (client, event_loop) = broker.client(id.clone());
        Watch {
            client,
            event_loop,
            mqtt: broker.mqtt.clone(),
            id,
            position: 0,
        }
    }

    /// Takes what arrives for `duration` into `view`; whether a connection was made.
    pub async fn feed(&mut self, view: &mut NetworkView, duration: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + duration;
        let mut connected = false;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.event_loop.poll()).await {
            match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    view.absorb(&publish.topic, &publish.payload)
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    for filter in [
                        filters::HEARTBEATS,
                        filters::RESOLV_HEARTBEAT,
                        filters::VALUES,
                        filters::BROADCAST_REPLIES,
                        filters::RESOLV_BROADCAST,
                        &filters::resolv_replies_to(VIEW_HADD),
                    ] {
                        let _ = self.client.try_subscribe(filter, QoS::AtMostOnce);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    if self.mqtt.brokers.len() > 1 {
                        self.position += 1;
                        self.event_loop.mqtt_options =
                            self.mqtt.options_at(self.position, self.id.clone());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
            }
        }
        connected
    }
}

/// Asks the primary for its map: every node it knows, with the state it told the network
/// (PENDING, FAILED and DEAD nodes included, which no broadcast reaches), and how long it has
/// been primary.
pub async fn ask_map(client: &AsyncClient) {
    let request = Message::Request(Request::info(InfoKind::Nodes, VIEW_HADD));
    let _ = client
        .publish(
            Topic::ResolvRequest.to_string(),
            QoS::AtMostOnce,
            false,
            request.encode(Codec::Json),
        )
        .await;
}

/// Asks every controller for its nodes (names for the view).
pub async fn ask_nodes(client: &AsyncClient) {
    let request = Message::Request(Request::info(InfoKind::Nodes, VIEW_HADD));
    let _ = client
        .publish(
            Topic::BroadcastRequest.to_string(),
            QoS::AtMostOnce,
            false,
            request.encode(Codec::Json),
        )
        .await;
}

/// Whether a control message's payload carries a signature (`sig`), in either codec.
fn is_signed(payload: &[u8]) -> bool {
    let tree = Codec::Json
        .decode_tree(payload)
        .or_else(|_| Codec::MessagePack.decode_tree(payload));
    matches!(tree, Ok(janitoo_protocol::Data::Object(fields)) if fields.contains_key(SIGNATURE))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `janitoo status` says when the network has no key, and when it has one the tool was not
    /// given.
    #[test]
    fn status_warns_of_an_unkeyed_network_and_names_the_key_it_lacks() {
        let beat = br#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#;
        let mut unkeyed = NetworkView::default();
        assert!(!unkeyed.render().contains("key"), "nothing heard yet");
        unkeyed.absorb("/dhcp/resolv/heartbeat", beat);
        let text = unkeyed.render();
        assert!(
            text.starts_with("warning: the primary's heartbeats are unsigned"),
            "{text}"
        );
        let key = ControlKey::from_secret(b"the network's shared secret").unwrap();
        let primary = ControlPlane::new(key.clone(), Hadd::new(1, 0), 0, DEFAULT_WINDOW_MS);
        let topic = Topic::ResolvHeartbeat;
        let message = Message::decode(&topic, beat, Codec::Json).unwrap();
        let wall = janitoo_config::clock::wall_clock_ms();
        let signed = primary.seal(&topic, &message, Codec::Json, wall, 1);
        let mut without_key = NetworkView::default();
        without_key.absorb("/dhcp/resolv/heartbeat", &signed);
        let text = without_key.render();
        assert!(
            text.starts_with("the network is keyed: give its key"),
            "{text}"
        );
        let mut with_key = NetworkView::keyed(key);
        with_key.absorb("/dhcp/resolv/heartbeat", &signed);
        let text = with_key.render();
        assert!(text.starts_with("primary: 0001/0000"), "{text}");
    }

    /// The issue's forged message must not show healthy nodes FAILED in `janitoo status`.
    #[test]
    fn a_strangers_dispatch_shows_no_node_failed() {
        let mut view = NetworkView::default();
        for node in ["0220/0001", "0220/0002"] {
            view.absorb(&format!("/dhcp/heartbeat/{node}"), b"ONLINE");
        }
        view.absorb(
            "/dhcp/resolv/heartbeat",
            br#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
        );
        view.absorb(
            "/dhcp/heartbeat/",
            br#"{"add_ctrl":220,"add_node":-1,"state":"FAILED","epoch":1,"observer":"0666/0000"}"#,
        );
        let text = view.render();
        assert!(!text.contains("FAILED"), "{text}");
        assert_eq!(text.matches("ONLINE").count(), 2, "{text}");
        // The primary's own word is shown, with who told it.
        view.absorb(
            "/dhcp/heartbeat/",
            br#"{"add_ctrl":220,"add_node":2,"state":"PENDING","epoch":65537,"observer":"0001/0000"}"#,
        );
        let text = view.render();
        assert!(text.contains("0220/0002  PENDING"), "{text}");
        assert!(text.contains("0001/0000"), "{text}");
    }

    /// A process that hears another on one of its addresses says so with a system value:
    /// `janitoo status` marks the node (and ignores the value for a node it does not know).
    #[test]
    fn a_node_two_processes_beat_on_is_marked() {
        let mut view = NetworkView::default();
        view.absorb("/dhcp/heartbeat/0010/0000", b"ONLINE");
        view.absorb("/dhcp/heartbeat/0011/0000", b"ONLINE");
        let (topic, message) = janitoo_protocol::duplicate::shared_address_value(
            &janitoo_protocol::duplicate::Duplicate {
                hadd: Hadd::new(10, 0),
                foreign_beats: 3,
            },
        );
        view.absorb(&topic.to_string(), &message.encode(Codec::Json));
        let (topic, message) = janitoo_protocol::duplicate::shared_address_value(
            &janitoo_protocol::duplicate::Duplicate {
                hadd: Hadd::new(77, 0),
                foreign_beats: 3,
            },
        );
        view.absorb(&topic.to_string(), &message.encode(Codec::Json));
        let text = view.render();
        assert!(
            text.contains("0010/0000  ! two processes beat on this address"),
            "{text}"
        );
        assert_eq!(text.matches("two processes").count(), 1, "{text}");
        assert!(!text.contains("0077/0000"), "{text}");
    }

    /// Under the original's primary: its map answer names it (before its heartbeat, 15 s
    /// apart, is heard), and the states it tells are shown as told by it.
    #[test]
    fn status_names_the_originals_primary_from_its_map() {
        let mut view = NetworkView::default();
        view.absorb(
            "/dhcp/resolv/reply/9999/9991",
            br#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_nodes", "data": {
                "0220/0001": {"uuid": "ambiance", "hadd": "0220/0001", "name": "Ambiance", "cmd_classes": [49], "state": "PENDING"},
                "0001/0000": {"uuid": "dhcp", "hadd": "0001/0000", "name": "DHCP Server", "cmd_classes": [4096, 4176, 112], "state": "ONLINE"}}}"#,
        );
        let text = view.render();
        assert!(
            text.contains("primary: 0001/0000  the original's janitoo_dhcp"),
            "{text}"
        );
        assert!(text.contains("0220/0001  PENDING"), "{text}");
        assert!(!text.contains("itself"), "{text}");
        view.absorb(
            "/dhcp/resolv/heartbeat",
            br#"{"add_ctrl":1,"add_node":0,"state":"ONLINE"}"#,
        );
        let text = view.render();
        assert!(text.contains("the original's: no epoch"), "{text}");
    }

    /// `janitoo status` shows the primary's map: nodes no broadcast reaches (PENDING, FAILED,
    /// DEAD) with the state the primary told, and when it took over, not when first heard.
    #[test]
    fn the_primarys_map_gives_every_state_and_the_real_takeover_time() {
        let mut view = NetworkView::default();
        view.absorb(
            "/dhcp/resolv/reply/9999/9991",
            br#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"reply_hadd":"9999/9991",
                "epoch":65537,"primary_for_ms":302000,"chunk":1,"chunks":1,"data":{
                "0220/0001":{"hadd":"0220/0001","uuid":"ambiance","name":"Ambiance","state":"PENDING"},
                "0221/0001":{"hadd":"0221/0001","uuid":"garden","name":"Garden","state":"FAILED"},
                "0222/0001":{"hadd":"0222/0001","uuid":"shed","name":"Shed","state":"DEAD"},
                "0223/0001":{"hadd":"0223/0001","uuid":"hall","name":"Hall","state":"ONLINE"}}}"#,
        );
        view.absorb(
            "/dhcp/resolv/heartbeat",
            br#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
        );
        let text = view.render();
        for line in [
            "0220/0001  PENDING   Ambiance",
            "0221/0001  FAILED    Garden",
            "0222/0001  DEAD      Shed",
            "0223/0001  ONLINE    Hall",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert_eq!(
            text.matches("0001/0000").count(),
            6,
            "told by the primary\n{text}"
        );
        assert!(text.contains("primary for 5m 02s"), "{text}");
        assert!(
            text.contains("0001/0000 became primary, epoch 0x10001 (5m 02s ago)"),
            "{text}"
        );
        assert_eq!(text.matches("became primary").count(), 1, "{text}");
    }

    #[test]
    fn the_first_primary_heard_is_no_takeover() {
        let mut view = NetworkView::default();
        view.absorb(
            "/dhcp/resolv/heartbeat",
            br#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
        );
        assert!(!view.render().contains("became primary"));
        // 0002 announced its candidacy: its claim is believed while 0001 still beats.
        view.absorb(
            "/values/system/0002/0000/network_controller",
            br#"{"uuid":"network_controller","genre":4,"cmd_class":4177,"data":"secondary",
                "hadd":"0002/0000","role":"secondary","priority":5,"epoch":65537}"#,
        );
        view.absorb(
            "/dhcp/resolv/heartbeat",
            br#"{"add_ctrl":2,"add_node":0,"state":"ONLINE","epoch":131074}"#,
        );
        let text = view.render();
        assert!(
            text.contains("0002/0000 became primary, epoch 0x20002"),
            "{text}"
        );
    }
}
