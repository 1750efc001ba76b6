//! A plain MQTT client (rumqttc) that speaks Janitoo, as the original's `jnt_query` would.

use std::time::Duration;

use janitoo_config::clock::wall_clock_ms;
use janitoo_protocol::control_plane::requests::sign_request;
use janitoo_protocol::control_plane::ControlKey;
use janitoo_protocol::{
    Codec, CommandClass, Genre, Hadd, Message, Request, Status, Topic, ValueReply,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// The address our client answers on, as `jnt_query`'s.
pub const CLIENT_HADD: Hadd = Hadd::new(9999, 9990);

/// A received publication.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Received {
    /// Decodes it as Janitoo JSON.
    pub fn message(&self) -> Message {
        let topic = Topic::parse(&self.topic).unwrap();
        Message::decode(&topic, &self.payload, Codec::Json).unwrap_or_else(|err| {
            panic!(
                "{}: {err}: {}",
                self.topic,
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
}

/// A connected client and what it has received.
pub struct Client {
    client: AsyncClient,
    received: mpsc::UnboundedReceiver<Received>,
    acks: mpsc::UnboundedReceiver<()>,
    backlog: std::collections::VecDeque<Received>,
    next_id: u64,
}

impl Client {
    /// Connects to `127.0.0.1:<port>` and waits for the ConnAck.
    pub async fn connect(port: u16) -> Client {
        Client::connect_as(port, None)
            .await
            .expect("no ConnAck from the broker")
    }

    /// Connects to `127.0.0.1:<port>` with an account; `None` when the broker does not
    /// accept the connection within 10 s.
    pub async fn connect_as(port: u16, account: Option<(&str, &str)>) -> Option<Client> {
        let id = format!("janitoo-test-{}", std::process::id())
            + &format!("-{:?}", Instant::now()).replace([' ', '.', '{', '}', ':'], "");
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_max_packet_size(32 << 20, 32 << 20)
            .set_keep_alive(Duration::from_secs(30));
        if let Some((user, password)) = account {
            options.set_credentials(user, password);
        }
        let (client, mut event_loop) = AsyncClient::new(options, 100_000);
        event_loop.network_options.set_tcp_nodelay(true);
        let (sender, received) = mpsc::unbounded_channel();
        let (ack_sender, mut acks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut connected = false;
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let _ = sender.send(Received {
                            topic: publish.topic,
                            payload: publish.payload.to_vec(),
                        });
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_) | Packet::SubAck(_))) => {
                        connected = true;
                        let _ = ack_sender.send(());
                    }
                    Ok(_) => {}
                    // Refused (no account, a bad password): no point in trying again.
                    Err(rumqttc::ConnectionError::ConnectionRefused(_)) => break,
                    // Nothing listens yet: try again.
                    Err(rumqttc::ConnectionError::Io(err))
                        if err.kind() == std::io::ErrorKind::ConnectionRefused =>
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    // The broker hung up before accepting us: it refused, without saying so.
                    Err(_) if !connected => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        timeout(Duration::from_secs(10), acks.recv()).await.ok()??;
        Some(Client {
            client,
            received,
            acks,
            backlog: std::collections::VecDeque::new(),
            next_id: 0,
        })
    }

    /// Subscribes and waits for the SubAck.
    pub async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtMostOnce)
            .await
            .unwrap();
        timeout(Duration::from_secs(10), self.acks.recv())
            .await
            .expect("no SubAck");
    }

    /// Publishes, QoS 0.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload.into())
            .await
            .unwrap();
    }

    /// Publishes, QoS 0, retained (as a stranger may).
    pub async fn publish_retained(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtMostOnce, true, payload.into())
            .await
            .unwrap();
    }

    /// Publishes `payload` (a request written by hand, with `"request_id":"<id>"` and
    /// `"reply_hadd":"9999/9990"`) on `topic` and waits for the reply carrying that id on
    /// `/nodes/9999/9990/reply`, read as plain JSON (a reply to a broken request may not
    /// decode as a full value).
    pub async fn ask_raw(
        &mut self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        id: &str,
        wait: Duration,
    ) -> Option<serde_json::Value> {
        self.publish(topic, payload).await;
        self.reply_raw(id, wait).await
    }

    /// The reply carrying request id `id` on `/nodes/9999/9990/reply`, as plain JSON, if it
    /// comes within `wait`.
    pub async fn reply_raw(&mut self, id: &str, wait: Duration) -> Option<serde_json::Value> {
        let reply_topic = Topic::NodeReply(CLIENT_HADD).to_string();
        let reply = self
            .next_matching(wait, |received| {
                received.topic == reply_topic
                    && serde_json::from_slice::<serde_json::Value>(&received.payload)
                        .is_ok_and(|tree| tree["request_id"] == id)
            })
            .await?;
        serde_json::from_slice(&reply.payload).ok()
    }

    /// The next publication that satisfies `wanted`, within `wait`. Publications that do not
    /// are kept, in order, for later calls.
    pub async fn next_matching(
        &mut self,
        wait: Duration,
        wanted: impl Fn(&Received) -> bool,
    ) -> Option<Received> {
        if let Some(at) = self.backlog.iter().position(&wanted) {
            return self.backlog.remove(at);
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.received.recv()).await {
                Ok(Some(received)) if wanted(&received) => return Some(received),
                Ok(Some(other)) => self.backlog.push_back(other),
                _ => return None,
            }
        }
    }

    /// The next publication on exactly `topic`.
    pub async fn next_on(&mut self, topic: &str, wait: Duration) -> Option<Received> {
        self.next_matching(wait, |received| received.topic == topic)
            .await
    }

    /// Everything received and not taken yet, in order.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut all: Vec<Received> = self.backlog.drain(..).collect();
        while let Ok(received) = self.received.try_recv() {
            all.push(received);
        }
        all
    }

    /// Forgets what was received so far.
    pub fn clear(&mut self) {
        self.backlog.clear();
        while self.received.try_recv().is_ok() {}
    }

    /// Sends a get or set to `hadd` with a fresh request id and waits for the matching answer
    /// on `/nodes/9999/9990/reply` (subscribe to it first).
    pub async fn ask(&mut self, request: Request) -> ValueReply {
        let id = self.next_id + 1;
        self.try_ask(request, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no answer to request it-{id}"))
    }

    /// As [`Client::ask`], but `None` when no answer comes within `wait`.
    pub async fn try_ask(&mut self, request: Request, wait: Duration) -> Option<ValueReply> {
        self.try_ask_signed(request, None, wait).await
    }

    /// As [`Client::try_ask`], the request signed with `key` when there is one (an
    /// operator's tool given the network's key).
    pub async fn try_ask_signed(
        &mut self,
        mut request: Request,
        key: Option<&ControlKey>,
        wait: Duration,
    ) -> Option<ValueReply> {
        self.next_id += 1;
        let id = format!("it-{}", self.next_id);
        request.request_id = Some(id.clone());
        request.reply_hadd = Some(CLIENT_HADD);
        let topic = Topic::NodeRequest(request.hadd.expect("a request names its node"));
        let payload = match key {
            Some(key) => sign_request(key, &topic, request, Codec::Json, wall_clock_ms()),
            None => Message::Request(request).encode(Codec::Json),
        };
        self.publish(&topic.to_string(), payload).await;
        let reply_topic = Topic::NodeReply(CLIENT_HADD).to_string();
        let answer = self
            .next_matching(wait, |received| {
                received.topic == reply_topic
                    && matches!(received.message(), Message::ValueReply(ref reply) if reply.request_id.as_deref() == Some(&id))
            })
            .await?;
        match answer.message() {
            Message::ValueReply(reply) => Some(reply),
            other => panic!("{other:?}"),
        }
    }

    /// A counter of a controller's process metrics (system values of the node `controller`,
    /// its network controller's or first bus's): its value now, asked again until answered
    /// within 20 s (a get may be lost in a broker's backlog after a flood). Panics when not
    /// answered 200.
    pub async fn metric(&mut self, controller: Hadd, uuid: &str) -> f64 {
        let read = || {
            Request::get(
                controller,
                uuid,
                janitoo_protocol::Genre::System,
                janitoo_protocol::CommandClass::CONFIGURATION,
            )
        };
        let reply = self.ask_until_answered(read, Duration::from_secs(20)).await;
        assert_eq!(reply.status(), Status::OK, "{uuid}: {:?}", reply.error);
        janitoo_protocol::value::data_as_f64(&reply.value.data)
            .unwrap_or_else(|| panic!("{uuid}: {reply:?}"))
    }

    /// Asks again and again (every 300 ms) until the node answers, within `limit`: for a
    /// controller that is still connecting, or reconnecting with backoff.
    pub async fn ask_until_answered(
        &mut self,
        make: impl Fn() -> Request,
        limit: Duration,
    ) -> ValueReply {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(reply) = self.try_ask(make(), Duration::from_millis(300)).await {
                return reply;
            }
        }
        panic!("no answer within {limit:?}");
    }

    /// [`Client::ask_until_answered`] for a config value (`name`, `location`...) of `hadd`.
    pub async fn config_until_answered(
        &mut self,
        hadd: Hadd,
        uuid: &str,
        limit: Duration,
    ) -> ValueReply {
        let config = || Request::get(hadd, uuid, Genre::Config, CommandClass::CONFIGURATION);
        self.ask_until_answered(config, limit).await
    }
}
