//! A tool's own MQTT connection: it subscribes, asks and waits for answers, by request id or,
//! for the original's nodes, on the value's topic.

use std::time::Duration;

use janitoo_config::clock::wall_clock_ms;
use janitoo_config::BrokerAddress;
use janitoo_protocol::control_plane::requests::sign_request;
use janitoo_protocol::control_plane::ControlKey;
use janitoo_protocol::{
    Codec, Data, DiscoveryData, DiscoveryReply, Genre, Hadd, InfoKind, Message, NodeInfo, Request,
    Topic, ValueDescriptor, ValueReply,
};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use tokio::time::Instant;

use crate::connect::BrokerSettings;
use crate::run::Failure;

/// A tool's own connection: it answers to `/nodes/<hadd>/reply` with a HADD of its own.
pub struct ToolClient {
    client: AsyncClient,
    events: EventLoop,
    /// The address replies come to.
    pub hadd: Hadd,
    broker: BrokerAddress,
    /// The network's key, when given: requests to a node are signed with it, and read from
    /// the operators' share of a keyed controller (served during a flood).
    signing: Option<ControlKey>,
    /// Publications that came while the subscriptions were being made (retained ones do).
    early: std::collections::VecDeque<Received>,
}

/// Parses a HADD argument.
pub fn hadd_argument(text: &str) -> Result<Hadd, Failure> {
    Hadd::parse(text).map_err(|err| {
        Failure::Usage(anyhow::anyhow!(
            "HADD {text:?}: {err} (expected cccc/nnnn, like 0220/0001)"
        ))
    })
}

/// A received message: its topic, payload, and what it decodes to.
pub struct Received {
    /// The topic.
    pub topic: String,
    /// The raw payload.
    pub payload: Vec<u8>,
}

impl Received {
    /// The decoded message, or why it is not one.
    pub fn decode(&self) -> Result<(Topic, Message), String> {
        Message::decode_on(&self.topic, &self.payload, Codec::Json)
            .or_else(|_| Message::decode_on(&self.topic, &self.payload, Codec::MessagePack))
            .map_err(|err| err.to_string())
    }
}

impl ToolClient {
    /// Connects to the first broker of the list that answers (each tried in turn) and
    /// subscribes to `filters` plus its own reply topic; fails with a message naming the
    /// brokers when none answers within `within`.
    pub async fn connect(
        settings: &BrokerSettings,
        filters: &[&str],
        within: Duration,
    ) -> Result<ToolClient, Failure> {
        let brokers = settings.address();
        let hadd = Hadd::new(9998, 1000 + (std::process::id() % 8999) as u16);
        // The client id must be unique on the broker, or two tools disconnect each other.
        let client_id = format!("janitoo-tool-{}-{}", std::process::id(), rand_id());
        let (client, mut events) = settings.client(client_id.clone());
        let reply = Topic::NodeReply(hadd).to_string();
        for filter in filters.iter().copied().chain([reply.as_str()]) {
            client
                .subscribe(filter, QoS::AtMostOnce)
                .await
                .map_err(|err| Failure::Other(err.into()))?;
        }
        let deadline = Instant::now() + within;
        let mut subacks = 0;
        let mut early = std::collections::VecDeque::new();
        let mut last_error = String::from("no answer");
        let mut position = 0;
        while subacks < filters.len() + 1 {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Err(_) if brokers.len() > 1 => {
                    return Err(Failure::Other(anyhow::anyhow!(
                        "no broker of {brokers} reachable: {last_error}"
                    )))
                }
                Err(_) => {
                    return Err(Failure::Other(anyhow::anyhow!(
                        "broker {brokers} unreachable: {last_error}"
                    )))
                }
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => subacks += 1,
                Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => early.push_back(Received {
                    topic: publish.topic,
                    payload: publish.payload.to_vec(),
                }),
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    last_error = format!("{}: {err}", brokers.at(position));
                    if brokers.len() > 1 {
                        // The next broker of the list: the subscriptions not sent yet go there.
                        position += 1;
                        events.mqtt_options = settings.mqtt.options_at(position, client_id.clone());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Ok(ToolClient {
            client,
            events,
            hadd,
            broker: brokers.at(position).clone(),
            signing: settings.control_key.clone(),
            early,
        })
    }

    /// Publishes `message` on `topic` (JSON, as every Janitoo client understands); a request
    /// to a node signed with the network's key, when the tool has it.
    pub async fn send(&self, topic: &Topic, message: Message) -> Result<(), Failure> {
        let payload = match (message, &self.signing, topic) {
            (Message::Request(request), Some(key), Topic::NodeRequest(_)) => {
                sign_request(key, topic, request, Codec::Json, wall_clock_ms())
            }
            (message, _, _) => message.encode(Codec::Json),
        };
        self.client
            .publish(topic.to_string(), QoS::AtMostOnce, false, payload)
            .await
            .map_err(|err| Failure::Other(err.into()))
    }

    /// The next message before `deadline`, `None` after it.
    pub async fn next(&mut self, deadline: Instant) -> Result<Option<Received>, Failure> {
        if let Some(early) = self.early.pop_front() {
            return Ok(Some(early));
        }
        loop {
            // Checked first: under steady traffic the event loop is always ready.
            if Instant::now() >= deadline {
                return Ok(None);
            }
            match tokio::time::timeout_at(deadline, self.events.poll()).await {
                Err(_) => return Ok(None),
                Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                    return Ok(Some(Received {
                        topic: publish.topic,
                        payload: publish.payload.to_vec(),
                    }))
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    return Err(Failure::Other(anyhow::anyhow!(
                        "lost broker {}: {err}",
                        self.broker
                    )))
                }
            }
        }
    }

    /// A value as its node describes it in a discovery answer, if the node answers and has it.
    pub async fn value_described(
        &mut self,
        hadd: Hadd,
        genre: Genre,
        uuid: &str,
        index: u32,
        wait: Duration,
    ) -> Result<Option<ValueDescriptor>, Failure> {
        let mut ask = Request::info(InfoKind::for_genre(genre), self.hadd);
        ask.hadd = Some(hadd);
        let Some(Message::DiscoveryReply(reply)) = self.ask(ask, wait).await? else {
            return Ok(None);
        };
        Ok(values_of(&reply, hadd)
            .into_iter()
            .find(|value| value.uuid == uuid && value.index == index))
    }

    /// Sends `request` to its node and waits for the answer with the same `request_id`.
    pub async fn ask(
        &mut self,
        mut request: Request,
        wait: Duration,
    ) -> Result<Option<Message>, Failure> {
        let id = format!("janitoo-{}-{}", self.hadd.node, rand_id());
        request.request_id = Some(id.clone());
        request.reply_hadd = Some(self.hadd);
        let (request_hadd, request_uuid) = (request.hadd, request.uuid.clone());
        let topic = match request.hadd {
            Some(hadd) => Topic::NodeRequest(hadd),
            None => Topic::BroadcastRequest,
        };
        let wanted = request.data.clone();
        let is_set = request.op == janitoo_protocol::Operation::Set;
        self.send(&topic, Message::Request(request)).await?;
        let mut deadline = Instant::now() + wait;
        // An answer on the value's topic without our request id: kept, while a proper reply
        // may still come (briefly), so that a poll of the old data is not taken for it.
        let mut fallback: Option<Message> = None;
        while let Some(received) = self.next(deadline).await? {
            let Ok((_, message)) = received.decode() else {
                continue;
            };
            let echoed = match &message {
                Message::ValueReply(reply) => reply.request_id.as_deref(),
                Message::DiscoveryReply(reply) => reply.request_id.as_deref(),
                _ => None,
            };
            if echoed == Some(id.as_str()) {
                return Ok(Some(message));
            }
            // The original's answer on the value's topic: its request id when it echoes it,
            // else the node and the value asked about (for a set, with the data set).
            let Message::Value(publication) = &message else {
                continue;
            };
            let answer = publication.instances().into_iter().find_map(|value| {
                match value.extra.get("request_id").and_then(Data::as_str) {
                    Some(echoed) => (echoed == id).then_some((value, true)),
                    None => (value.hadd == request_hadd
                        && value.uuid == request_uuid
                        && (!is_set || value.data == wanted))
                        .then_some((value, false)),
                }
            });
            if let Some((value, certain)) = answer {
                let reply = Message::ValueReply(ValueReply {
                    value: value.clone(),
                    status: Some(janitoo_protocol::Status::OK),
                    error: None,
                    request_id: Some(id.clone()),
                });
                if certain {
                    return Ok(Some(reply));
                }
                if fallback.is_none() {
                    deadline = deadline.min(Instant::now() + Duration::from_millis(300));
                    fallback = Some(reply);
                }
            }
        }
        Ok(fallback)
    }
}

pub(super) fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos())
}

pub(super) fn no_answer(what: &str, wait: Duration) -> Failure {
    Failure::Other(anyhow::anyhow!("no answer from {what} within {wait:?}"))
}

/// The nodes of a discovery answer.
pub(super) fn nodes_of(reply: &DiscoveryReply) -> std::collections::BTreeMap<Hadd, NodeInfo> {
    match &reply.data {
        DiscoveryData::Nodes(nodes) => nodes.clone(),
        DiscoveryData::Values(_) => std::collections::BTreeMap::new(),
    }
}

/// The values of node `hadd` in a discovery answer.
pub(super) fn values_of(reply: &DiscoveryReply, hadd: Hadd) -> Vec<ValueDescriptor> {
    match &reply.data {
        DiscoveryData::Values(by_node) => by_node
            .get(&hadd)
            .into_iter()
            .flat_map(|values| values.values())
            .flat_map(|instances| instances.values().cloned())
            .collect(),
        DiscoveryData::Nodes(_) => Vec::new(),
    }
}
