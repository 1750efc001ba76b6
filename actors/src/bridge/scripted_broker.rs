//! A broker as a test plays it, one connection at a time: the bridge's connections' unit tests
//! script what it answers.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{ConnAck, ConnectReturnCode, PubAck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A broker of one connection at a time, as a test plays it: reads MQTT packets and
/// answers what it is told to.
pub struct Peer {
    /// The client id it connected with.
    pub client_id: String,
    stream: TcpStream,
    buffer: BytesMut,
}

impl Peer {
    /// The next connection to `listener` (within 10 s), its CONNECT acknowledged.
    pub async fn accept(listener: &TcpListener) -> Peer {
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept());
        let (stream, _) = accepted.await.expect("no connection").unwrap();
        let mut peer = Peer {
            client_id: String::new(),
            stream,
            buffer: BytesMut::new(),
        };
        match peer.next().await {
            rumqttc::Packet::Connect(connect) => peer.client_id = connect.client_id,
            other => panic!("a connection began with {other:?}"),
        }
        peer.send(rumqttc::Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false,
        )))
        .await;
        peer
    }

    /// The next packet the client sends.
    pub async fn next(&mut self) -> rumqttc::Packet {
        loop {
            if let Ok(packet) = rumqttc::Packet::read(&mut self.buffer, 1 << 20) {
                return packet;
            }
            let read = self.stream.read_buf(&mut self.buffer).await.unwrap();
            assert!(read > 0, "the client closed the connection");
        }
    }

    /// Sends `packet` to the client.
    pub async fn send(&mut self, packet: rumqttc::Packet) {
        let mut bytes = BytesMut::new();
        packet.write(&mut bytes, 1 << 20).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// The topics of the next `count` publications, each retained, acknowledged when `ack`.
    pub async fn retained_publications(&mut self, count: usize, ack: bool) -> Vec<String> {
        let mut topics = Vec::new();
        while topics.len() < count {
            if let rumqttc::Packet::Publish(publish) = self.next().await {
                assert!(publish.retain);
                if ack {
                    self.send(rumqttc::Packet::PubAck(PubAck::new(publish.pkid)))
                        .await;
                }
                topics.push(publish.topic);
            }
        }
        topics
    }

    /// The topics of the next `count` publications.
    pub async fn publication_topics(&mut self, count: usize) -> Vec<String> {
        let mut topics = Vec::new();
        while topics.len() < count {
            if let rumqttc::Packet::Publish(publish) = self.next().await {
                topics.push(publish.topic);
            }
        }
        topics
    }

    /// Waits until the client ends the connection (a DISCONNECT, or closed).
    pub async fn ended(&mut self) {
        loop {
            while let Ok(packet) = rumqttc::Packet::read(&mut self.buffer, 1 << 20) {
                if packet == rumqttc::Packet::Disconnect {
                    return;
                }
            }
            match self.stream.read_buf(&mut self.buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}
