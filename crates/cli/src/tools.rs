//! The operator tools: `janitoo query`, `get`, `set` and `spy`, plain MQTT clients of any
//! Janitoo network (ours or the original's).
//!
//! Exit codes, for scripts: 0 done; 1 the broker is unreachable or nobody answered; 2 a bad
//! argument (nothing was sent); 3 the node answered with a refusal (4xx or 5xx).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::time::Duration;

use janitoo_config::BrokerAddress;
use janitoo_protocol::{
    Codec, CommandClass, Data, DiscoveryData, DiscoveryReply, Genre, Hadd, InfoKind, Message,
    NodeInfo, Request, Topic, ValueDescriptor, ValueReply,
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
    /// Connects to `broker` and subscribes to `filters` plus its own reply topic; fails with
    /// a message naming the broker when it cannot within `within`.
    pub async fn connect(
        settings: &BrokerSettings,
        filters: &[&str],
        within: Duration,
    ) -> Result<ToolClient, Failure> {
        let broker = settings.address();
        let hadd = Hadd::new(9998, 1000 + (std::process::id() % 8999) as u16);
        // The client id must be unique on the broker, or two tools disconnect each other.
        let client_id = format!("janitoo-tool-{}-{}", std::process::id(), rand_id());
        let (client, mut events) = settings.client(client_id);
        let reply = Topic::NodeReply(hadd).to_string();
        for filter in filters.iter().copied().chain([reply.as_str()]) {
            client
                .subscribe(filter, QoS::AtMostOnce)
                .await
                .map_err(|err| Failure::Other(err.into()))?;
        }
        let deadline = Instant::now() + within;
        let mut subacks = 0;
        let mut last_error = String::from("no answer");
        while subacks < filters.len() + 1 {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Err(_) => {
                    return Err(Failure::Other(anyhow::anyhow!(
                        "broker {broker} unreachable: {last_error}"
                    )))
                }
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => subacks += 1,
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    last_error = err.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Ok(ToolClient {
            client,
            events,
            hadd,
            broker: broker.clone(),
        })
    }

    /// Publishes `message` on `topic` (JSON, as every Janitoo client understands).
    pub async fn send(&self, topic: &Topic, message: Message) -> Result<(), Failure> {
        self.client
            .publish(
                topic.to_string(),
                QoS::AtMostOnce,
                false,
                message.encode(Codec::Json),
            )
            .await
            .map_err(|err| Failure::Other(err.into()))
    }

    /// The next message before `deadline`, `None` after it.
    pub async fn next(&mut self, deadline: Instant) -> Result<Option<Received>, Failure> {
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

fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos())
}

fn no_answer(what: &str, wait: Duration) -> Failure {
    Failure::Other(anyhow::anyhow!("no answer from {what} within {wait:?}"))
}

/// Text of a value's data, with its units.
pub fn show_data(data: &Data, units: Option<&str>) -> String {
    let text = match data {
        Data::String(text) => text.clone(),
        other => other.to_string(),
    };
    match units {
        Some(units) if !units.is_empty() => format!("{text} {units}"),
        _ => text,
    }
}

/// The data a `set` argument means: JSON when it parses (numbers, booleans, quoted strings),
/// the text itself otherwise.
pub fn parse_data(text: &str) -> Data {
    serde_json::from_str::<Data>(text).unwrap_or_else(|_| Data::String(text.to_owned()))
}

fn print_json(value: &impl serde::Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
}

/// Writes `text` to stdout; false when nobody reads it any more (`janitoo spy | head`), which
/// ends a long-running tool quietly instead of panicking.
pub fn emit(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

fn refused(reply: &ValueReply) -> Failure {
    Failure::Refused(format!(
        "{} {}",
        reply.status().0,
        reply.error.as_deref().unwrap_or("refused")
    ))
}

/// What `get` and `set` share.
pub struct ValueArgs {
    /// The broker.
    pub broker: BrokerSettings,
    /// The node.
    pub hadd: String,
    /// The value.
    pub uuid: String,
    /// The instance.
    pub index: u32,
    /// The genre the request names.
    pub genre: Genre,
    /// The value's command class, when given.
    pub cmd_class: Option<u16>,
    /// How long to wait for the answer.
    pub wait: Duration,
    /// One JSON object instead of a line for people.
    pub json: bool,
}

/// `janitoo get` and `janitoo set` (with `data`).
pub fn get_or_set(args: ValueArgs, data: Option<String>) -> Result<(), Failure> {
    let hadd = hadd_argument(&args.hadd)?;
    // The original answers config and system requests on the value's topic only.
    let value_topic = Topic::Value {
        genre: args.genre,
        hadd,
        uuid: args.uuid.clone(),
    }
    .to_string();
    block_on(async {
        let mut tool = ToolClient::connect(
            &args.broker,
            &[value_topic.as_str()],
            Duration::from_secs(3),
        )
        .await?;
        // The original's nodes drop a request whose command class is not the one they expect:
        // 112 for config and system values, the value's own for the others, asked of the node
        // when not given.
        let cmd_class = match (args.cmd_class, args.genre) {
            (Some(class), _) => CommandClass(class),
            (None, Genre::Config | Genre::System) => CommandClass::CONFIGURATION,
            (None, genre) => {
                let known = tool
                    .value_described(hadd, genre, &args.uuid, args.index, args.wait)
                    .await?;
                CommandClass::for_request(genre, known.map(|value| value.cmd_class))
            }
        };
        let mut request = match &data {
            Some(text) => Request::set(hadd, &args.uuid, args.genre, cmd_class, parse_data(text)),
            None => Request::get(hadd, &args.uuid, args.genre, cmd_class),
        };
        request.index = Some(args.index);
        let answer = tool.ask(request, args.wait).await?;
        let Some(Message::ValueReply(reply)) = answer else {
            let hint = if cmd_class == CommandClass::default() {
                " (the original's nodes drop a request without the value's command class: \
                 give it with --cmd-class)"
            } else {
                ""
            };
            return Err(no_answer(&format!("node {hadd}{hint}"), args.wait));
        };
        if args.json {
            print_json(&Message::ValueReply(reply.clone()).to_tree());
        } else {
            let value = &reply.value;
            emit(&format!(
                "{hadd} {}[{}] = {}  ({} {})\n",
                value.uuid,
                value.index,
                show_data(&value.data, value.units.as_deref()),
                reply.status().0,
                reply.error.as_deref().unwrap_or("OK"),
            ));
        }
        if reply.status().is_success() {
            Ok(())
        } else {
            Err(refused(&reply))
        }
    })
}

/// What `janitoo query node` shows.
pub struct NodeQuery {
    /// The broker.
    pub broker: BrokerSettings,
    /// The node.
    pub hadd: String,
    /// Only this genre's values (all genres when absent).
    pub genre: Option<Genre>,
    /// How long to wait for each answer.
    pub wait: Duration,
    /// JSON instead of tables.
    pub json: bool,
}

/// `janitoo query node`: its node info and its values, by genre.
pub fn query_node(query: NodeQuery) -> Result<(), Failure> {
    let hadd = hadd_argument(&query.hadd)?;
    block_on(async {
        let mut tool = ToolClient::connect(&query.broker, &[], Duration::from_secs(3)).await?;
        let mut info = Request::info(InfoKind::Nodes, tool.hadd);
        info.hadd = Some(hadd);
        let node = match tool.ask(info, query.wait).await? {
            Some(Message::DiscoveryReply(reply)) => nodes_of(&reply).remove(&hadd),
            _ => return Err(no_answer(&format!("node {hadd}"), query.wait)),
        };
        let Some(node) = node else {
            return Err(Failure::Refused(format!(
                "404 node {hadd}: its controller answered, without it"
            )));
        };
        let genres = query.genre.map_or(Genre::ALL.to_vec(), |genre| vec![genre]);
        let mut values: Vec<ValueDescriptor> = Vec::new();
        for genre in genres {
            let mut ask = Request::info(InfoKind::for_genre(genre), tool.hadd);
            ask.hadd = Some(hadd);
            if let Some(Message::DiscoveryReply(reply)) = tool.ask(ask, query.wait).await? {
                values.extend(values_of(&reply, hadd));
            }
        }
        if query.json {
            let values: Vec<Data> = values.iter().map(ValueDescriptor::to_tree).collect();
            print_json(&serde_json::json!({ "node": node.to_tree(), "values": values }));
        } else {
            emit(&node_table(&node, &values));
        }
        Ok(())
    })
}

fn nodes_of(reply: &DiscoveryReply) -> BTreeMap<Hadd, NodeInfo> {
    match &reply.data {
        DiscoveryData::Nodes(nodes) => nodes.clone(),
        DiscoveryData::Values(_) => BTreeMap::new(),
    }
}

fn values_of(reply: &DiscoveryReply, hadd: Hadd) -> Vec<ValueDescriptor> {
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

/// The node and its values, as a table for people.
pub fn node_table(node: &NodeInfo, values: &[ValueDescriptor]) -> String {
    let mut out = format!(
        "{}  {:?} at {:?}  ({}, {})  heartbeat {} s\n",
        node.hadd, node.name, node.location, node.oid, node.product_name, node.heartbeat
    );
    let rows: Vec<[String; 5]> = values
        .iter()
        .map(|value| {
            let access = match (value.is_readonly, value.is_writeonly) {
                (Some(true), _) => "ro",
                (_, Some(true)) => "wo",
                _ => "rw",
            };
            [
                value.genre.segment().to_owned(),
                format!("{}[{}]", value.uuid, value.index),
                show_data(&value.data, value.units.as_deref()),
                access.to_owned(),
                value.label.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(&["GENRE", "VALUE", "DATA", "RW", "LABEL"], &rows));
    out
}

/// Left-aligned columns, as wide as their widest cell.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (at, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if at + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `janitoo query network`: a broadcast discovery; answers are shown as they arrive (on
/// stderr), and it ends when every controller seen beating has answered and none answered for
/// a second, or after `wait`.
pub fn query_network(broker: &BrokerSettings, wait: Duration, json: bool) -> Result<(), Failure> {
    block_on(async {
        let mut tool = ToolClient::connect(
            broker,
            &["/dhcp/heartbeat/#", "/broadcast/reply/#"],
            Duration::from_secs(3),
        )
        .await?;
        let request = Request::info(InfoKind::Nodes, tool.hadd);
        tool.send(&Topic::BroadcastRequest, Message::Request(request))
            .await?;
        let started = Instant::now();
        let deadline = started + wait;
        let mut nodes: BTreeMap<Hadd, NodeInfo> = BTreeMap::new();
        let mut answered = std::collections::BTreeSet::new();
        let mut beating = std::collections::BTreeSet::new();
        let mut last_answer = started;
        let progress = std::io::stderr().is_terminal();
        loop {
            let quiet = last_answer + Duration::from_secs(1);
            let all_in = !answered.is_empty() && beating.is_subset(&answered);
            let until = if all_in {
                quiet.min(deadline)
            } else {
                deadline
            };
            let Some(received) = tool.next(until).await? else {
                break;
            };
            match received.decode() {
                Ok((Topic::Heartbeat(hadd), _)) if hadd.is_controller() => {
                    beating.insert(hadd.ctrl);
                }
                Ok((Topic::BroadcastReply(_), Message::DiscoveryReply(reply))) => {
                    for (hadd, info) in nodes_of(&reply) {
                        answered.insert(hadd.ctrl);
                        nodes.insert(hadd, info);
                    }
                    last_answer = Instant::now();
                    if progress {
                        eprint!(
                            "\r{} controllers, {} nodes answered ({:.1} s)",
                            answered.len(),
                            nodes.len(),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                _ => {}
            }
        }
        if progress {
            eprintln!();
        }
        if nodes.is_empty() {
            return Err(no_answer("any controller", wait));
        }
        if json {
            let nodes: Vec<Data> = nodes.values().map(NodeInfo::to_tree).collect();
            print_json(&nodes);
        } else {
            let rows: Vec<[String; 5]> = nodes
                .values()
                .map(|node| {
                    [
                        node.hadd.to_string(),
                        node.name.clone(),
                        node.location.clone(),
                        node.oid.clone(),
                        node.state
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            emit(&table(&["HADD", "NAME", "LOCATION", "OID", "STATE"], &rows));
        }
        Ok(())
    })
}

/// `janitoo spy`: every message under `filter`, one line each, decoded; what does not decode
/// is shown raw. Stops after `count` messages or `duration`, else on Ctrl-C.
pub fn spy(
    broker: &BrokerSettings,
    filter: &str,
    json: bool,
    count: Option<u64>,
    duration: Option<Duration>,
) -> Result<(), Failure> {
    if rumqttc::valid_filter(filter).then_some(()).is_none() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--filter {filter:?}: not an MQTT topic filter"
        )));
    }
    let colour = !json && std::io::stdout().is_terminal();
    block_on(async {
        let mut tool = ToolClient::connect(broker, &[filter], Duration::from_secs(3)).await?;
        // For people (and scripts that wait for it): from here on, nothing is missed.
        eprintln!("spying on {filter} at {}", broker.address());
        let forever = Duration::from_secs(100 * 365 * 86_400);
        let deadline = Instant::now() + duration.unwrap_or(forever);
        let mut seen = 0;
        // Armed once: a Ctrl-C that comes while a line is printed still stops the loop.
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        while count.is_none_or(|count| seen < count) {
            let next = tokio::select! {
                next = tool.next(deadline) => next?,
                _ = &mut ctrl_c => None,
            };
            let Some(received) = next else { break };
            seen += 1;
            let line = if json {
                spy_json(&received).to_string()
            } else {
                spy_line(&received, colour)
            };
            if !emit(&format!("{line}\n")) {
                break;
            }
        }
        Ok(())
    })
}

/// One message as JSON: the topic and the decoded tree, or the raw payload and the error.
pub fn spy_json(received: &Received) -> Data {
    match received.decode() {
        Ok((_, message)) => serde_json::json!({
            "topic": received.topic,
            "kind": kind_of(&message),
            "message": message.to_tree(),
        }),
        Err(error) => serde_json::json!({
            "topic": received.topic,
            "raw": String::from_utf8_lossy(&received.payload),
            "error": error,
        }),
    }
}

fn kind_of(message: &Message) -> &'static str {
    match message {
        Message::Heartbeat(_) => "heartbeat",
        Message::HeartbeatOnBehalf(_) => "heartbeat-on-behalf",
        Message::Request(_) => "request",
        Message::ValueReply(_) => "value-reply",
        Message::DiscoveryReply(_) => "discovery-reply",
        Message::Value(_) => "value",
        Message::ResolvHeartbeat(_) => "resolv-heartbeat",
        Message::Lease(_) => "lease",
        Message::LeaseReply(_) => "lease-reply",
    }
}

/// One message as a line for people: its kind (coloured on a terminal), topic and gist.
pub fn spy_line(received: &Received, colour: bool) -> String {
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let (code, kind, gist) = match received.decode() {
        Ok((_, message)) => {
            let code = match &message {
                Message::Heartbeat(_) | Message::HeartbeatOnBehalf(_) => "2",
                Message::Request(_) => "33",
                Message::ValueReply(_) | Message::DiscoveryReply(_) => "32",
                Message::Value(_) => "36",
                _ => "35",
            };
            (code, kind_of(&message), gist(&message))
        }
        Err(error) => (
            "31",
            "raw",
            format!(
                "{}  ({error})",
                String::from_utf8_lossy(&received.payload)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        ),
    };
    format!(
        "{} {} {}",
        paint(code, &format!("{kind:<17}")),
        received.topic,
        gist
    )
}

fn gist(message: &Message) -> String {
    match message {
        Message::Heartbeat(beat) | Message::HeartbeatOnBehalf(beat) => {
            format!("{} {}", beat.target, beat.state.as_str())
        }
        Message::Request(request) => format!(
            "{} {}{} {}",
            request.op.as_str(),
            request.uuid,
            request.hadd.map(|h| format!(" on {h}")).unwrap_or_default(),
            if request.data.is_null() {
                String::new()
            } else {
                request.data.to_string()
            }
        ),
        Message::ValueReply(reply) => format!(
            "{} {} = {}{}",
            reply.status().0,
            reply.value.uuid,
            show_data(&reply.value.data, reply.value.units.as_deref()),
            reply
                .error
                .as_deref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        ),
        Message::DiscoveryReply(reply) => match &reply.data {
            DiscoveryData::Nodes(nodes) => format!("{} nodes", nodes.len()),
            DiscoveryData::Values(values) => format!(
                "{} values of {} nodes",
                values.values().map(BTreeMap::len).sum::<usize>(),
                values.len()
            ),
        },
        Message::Value(publication) => publication
            .instances()
            .iter()
            .map(|value| {
                format!(
                    "{}[{}] = {}",
                    value.uuid,
                    value.index,
                    show_data(&value.data, value.units.as_deref())
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_tree().to_string(),
    }
}

fn block_on<T>(work: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Other(err.into()))?
        .block_on(work)
}
