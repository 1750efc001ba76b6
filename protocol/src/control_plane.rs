//! A signed control plane, for brokers we do not control: with a shared secret, network
//! controllers sign what only they may say, and a controller that has the secret believes only
//! what is signed, fresh and new.
//!
//! What only controllers say: the primary's heartbeat (`/dhcp/resolv/heartbeat`), dispatches
//! on behalf of nodes (`/dhcp/heartbeat/`), the map (`/dhcp/resolv/reply/...`,
//! `/dhcp/resolv/broadcast/`), candidacies (`/values/system/<hadd>/network_controller`), and a
//! network controller's own heartbeats (its OFFLINE above all). Everything else (the nodes' own
//! heartbeats, values, requests) stays unsigned, so the original's nodes and tools keep working.
//!
//! A signed payload carries two more fields: `ts`, its time (ms since the Unix epoch), and
//! `sig`, the HMAC-SHA256 of the canonical payload without `sig` (keys sorted at every level,
//! compact JSON, whatever the codec on the wire), in hex. Candidacies also carry `since`, the
//! time the controller's process connected, and `conn`, the number of its current connection
//! to the broker (1 for the first). Its Last Will, registered at each connection and published
//! when that connection is lost, carries both, is stamped with `since`, and is believed once
//! per connection, only from the process that announced it, and never for a connection older
//! than the last announced. Anything else older or newer than the window (30 s: keep the
//! clocks in NTP time) is stale, and a signature seen before is a replay.
//!
//! A signature is 64 lower-case hex digits, and is remembered as the 32 bytes they stand for:
//! any other spelling of the same bytes is refused, so a replay cannot pass for new.
//!
//! Sans-IO: times are given, nothing is read or sent here.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::codec::Codec;
use crate::fields::Data;
use crate::hadd::Hadd;
use crate::heartbeat::Heartbeat;
use crate::message::Message;
use crate::model::{Genre, NodeState};
use crate::topic::Topic;

/// The field holding the signature.
pub const SIGNATURE: &str = "sig";
/// The field holding the time of signing, ms since the Unix epoch.
pub const STAMP: &str = "ts";
/// The field of a candidacy holding when its process connected (its Last Will's stamp).
pub const SINCE: &str = "since";
/// The field of a candidacy and of a Last Will holding the number of the process's connection.
pub const CONNECTION: &str = "conn";
/// The uuid of a candidacy value.
const CANDIDACY: &str = "network_controller";
/// How far a stamp may be from the receiver's clock, by default (ms).
pub const DEFAULT_WINDOW_MS: u64 = 30_000;
/// Signatures remembered before the first clean-up.
const CLEAN_AT: usize = 1_024;
/// The shortest secret accepted, bytes.
pub const MIN_SECRET: usize = 16;

/// Why a control message was not believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It carries no signature, or the payload is not a map.
    Unsigned,
    /// The signature does not match (another key, or the payload was changed).
    BadSignature,
    /// The signature is not written as 64 lower-case hex digits.
    Malformed,
    /// Its stamp is further from now than the window.
    Stale {
        /// How far, ms.
        off_ms: u64,
    },
    /// Its signature was seen before.
    Replayed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsigned => f.write_str("unsigned control message"),
            Refusal::BadSignature => f.write_str("bad signature"),
            Refusal::Malformed => f.write_str("signature not written as 64 lower-case hex digits"),
            Refusal::Stale { off_ms } => write!(f, "stamp {off_ms} ms away from now"),
            Refusal::Replayed => f.write_str("replayed"),
        }
    }
}

/// A signature's bytes (HMAC-SHA256).
pub type Signature = [u8; 32];

/// What a valid signature vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The time of signing, ms since the Unix epoch.
    pub stamp_ms: u64,
    /// The signature, decoded.
    pub signature: Signature,
}

/// The shared secret of a network's controllers.
#[derive(Clone)]
pub struct ControlKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ControlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlKey(..)")
    }
}

impl ControlKey {
    /// The key of `secret` (surrounding white space ignored, as in a key file); `None` when
    /// shorter than [`MIN_SECRET`] bytes.
    pub fn from_secret(secret: &[u8]) -> Option<ControlKey> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET {
            return None;
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        Some(ControlKey { mac })
    }

    /// The hex signature of `tree` (its `sig` field left out).
    fn signature(&self, tree: &Data) -> String {
        let mut bytes = Vec::with_capacity(256);
        canonical(tree, true, &mut bytes);
        let mut mac = self.mac.clone();
        mac.update(&bytes);
        hex(&mac.finalize().into_bytes())
    }

    /// Stamps and signs a map tree in place (anything else is left as it is).
    pub fn sign(&self, tree: &mut Data, stamp_ms: u64) {
        let Data::Object(fields) = tree else {
            return;
        };
        fields.remove(SIGNATURE);
        fields.insert(STAMP.into(), Data::from(stamp_ms));
        let signature = self.signature(tree);
        if let Data::Object(fields) = tree {
            fields.insert(SIGNATURE.into(), Data::from(signature));
        }
    }

    /// The stamp and signature of a tree signed with this key.
    pub fn verify(&self, tree: &Data) -> Result<Verified, Refusal> {
        let Data::Object(fields) = tree else {
            return Err(Refusal::Unsigned);
        };
        let (Some(signature), Some(stamp)) = (
            fields.get(SIGNATURE).and_then(Data::as_str),
            fields.get(STAMP).and_then(Data::as_u64),
        ) else {
            return Err(Refusal::Unsigned);
        };
        let mut bytes = Vec::with_capacity(256);
        canonical(tree, true, &mut bytes);
        let mut mac = self.mac.clone();
        mac.update(&bytes);
        let signature = unhex(signature).ok_or(Refusal::Malformed)?;
        mac.verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;
        Ok(Verified {
            stamp_ms: stamp,
            signature,
        })
    }
}

/// Whether only network controllers may say what is on `topic`.
pub fn is_control(topic: &Topic) -> bool {
    match topic {
        Topic::ResolvHeartbeat
        | Topic::HeartbeatOnBehalf
        | Topic::ResolvReply(_)
        | Topic::ResolvBroadcast
        | Topic::LeaseRecord(_) => true,
        Topic::Value { genre, uuid, .. } => *genre == Genre::System && uuid == CANDIDACY,
        _ => false,
    }
}

/// What a keyed controller's latest candidacy said of its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announced {
    /// When its process connected first: its Last Will's stamp.
    since: u64,
    /// The number of its connection then.
    connection: u64,
}

/// One controller's side of the signed control plane: its key, what it has seen, and which
/// controllers have announced themselves (with what their Last Will carries).
#[derive(Debug, Clone)]
pub struct ControlPlane {
    key: ControlKey,
    window_ms: u64,
    me: Hadd,
    since_ms: u64,
    /// Signatures believed within the window, with their stamps.
    seen: HashMap<Signature, u64>,
    /// The size of `seen` at which stale signatures are next forgotten.
    clean_at: usize,
    /// Keyed controllers, by their latest candidacy.
    controllers: HashMap<Hadd, Announced>,
    /// The latest Last Will believed of each controller, as (since, connection): one is
    /// believed per connection, in order.
    wills: HashMap<Hadd, (u64, u64)>,
}

impl ControlPlane {
    /// The control plane of controller `me`, whose process connected at `since_ms`.
    pub fn new(key: ControlKey, me: Hadd, since_ms: u64, window_ms: u64) -> ControlPlane {
        ControlPlane {
            key,
            window_ms,
            me,
            since_ms,
            seen: HashMap::new(),
            clean_at: CLEAN_AT,
            controllers: HashMap::new(),
            wills: HashMap::new(),
        }
    }

    /// Whether this process signs what it sends on `topic`: control topics, and its own
    /// heartbeats.
    pub fn signs(&self, topic: &Topic) -> bool {
        is_control(topic) || *topic == Topic::Heartbeat(self.me)
    }

    /// The payload of `message` for `topic`, signed when [`ControlPlane::signs`] says so;
    /// `connection` is the number of the process's current connection (candidacies carry it).
    pub fn seal(
        &self,
        topic: &Topic,
        message: &Message,
        codec: Codec,
        now_ms: u64,
        connection: u64,
    ) -> Vec<u8> {
        if !self.signs(topic) {
            return message.encode(codec);
        }
        let mut tree = match message {
            // A signed heartbeat is a map, never the bare word.
            Message::Heartbeat(heartbeat) => heartbeat.to_tree(),
            other => other.to_tree(),
        };
        if let (Topic::Value { .. }, Data::Object(fields)) = (topic, &mut tree) {
            fields.insert(SINCE.into(), Data::from(self.since_ms));
            fields.insert(CONNECTION.into(), Data::from(connection));
        }
        self.key.sign(&mut tree, now_ms);
        codec.encode_tree(&tree)
    }

    /// The Last Will to register at connection number `connection`: this controller OFFLINE,
    /// with that number, stamped with the time its process connected.
    pub fn will(&self, codec: Codec, connection: u64) -> Vec<u8> {
        let mut tree = Heartbeat::own(self.me, NodeState::Offline).to_tree();
        if let Data::Object(fields) = &mut tree {
            fields.insert(CONNECTION.into(), Data::from(connection));
        }
        self.key.sign(&mut tree, self.since_ms);
        codec.encode_tree(&tree)
    }

    /// Whether a message on `topic` must be signed to be believed: control topics, and the
    /// heartbeats of a controller that announced itself signed.
    pub fn checks(&self, topic: &Topic) -> bool {
        match topic {
            Topic::Heartbeat(hadd) => self.controllers.contains_key(hadd),
            other => is_control(other),
        }
    }

    /// Believes a received message, or says why not. `tree` is its payload tree (`None` when
    /// it is not one: a bare word, undecodable). Messages [`ControlPlane::checks`] does not
    /// check are believed as they are.
    pub fn admit(
        &mut self,
        topic: &Topic,
        tree: Option<&Data>,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        if !self.checks(topic) {
            return Ok(());
        }
        let tree = tree.ok_or(Refusal::Unsigned)?;
        let Verified {
            stamp_ms: stamp,
            signature,
        } = self.key.verify(tree)?;
        if let Topic::LeaseRecord(_) = topic {
            // Retained state, old by nature and delivered again at each subscription: its
            // signature says a controller wrote it, its epoch orders it.
            return Ok(());
        }
        let off_ms = stamp.abs_diff(now_ms);
        if let Topic::Heartbeat(hadd) = topic {
            let offline = tree.get("state").and_then(Data::as_str) == Some("OFFLINE");
            let announced = self.controllers.get(hadd).copied();
            if let Some(announced) = announced.filter(|it| offline && it.since == stamp) {
                // Its Last Will: believed once per connection, whatever its age.
                self.seen.insert(signature, stamp);
                let connection = tree.get(CONNECTION).and_then(Data::as_u64).unwrap_or(0);
                return self.believe_will(*hadd, announced, connection);
            }
        }
        if off_ms > self.window_ms {
            return Err(Refusal::Stale { off_ms });
        }
        self.forget_old(now_ms);
        if self.seen.insert(signature, stamp).is_some() {
            return Err(Refusal::Replayed);
        }
        if let Topic::Value { hadd, .. } = topic {
            if let Some(since) = tree.get(SINCE).and_then(Data::as_u64) {
                let connection = tree.get(CONNECTION).and_then(Data::as_u64).unwrap_or(0);
                self.controllers
                    .insert(*hadd, Announced { since, connection });
            }
        }
        Ok(())
    }

    /// Believes the Last Will of `hadd`'s connection number `connection`, unless its process
    /// has announced a later connection since or that Will (or a later one) was believed.
    fn believe_will(
        &mut self,
        hadd: Hadd,
        announced: Announced,
        connection: u64,
    ) -> Result<(), Refusal> {
        if connection < announced.connection {
            return Err(Refusal::Replayed);
        }
        let believed = self.wills.get(&hadd).copied();
        if believed.is_some_and(|(since, latest)| since == announced.since && connection <= latest)
        {
            return Err(Refusal::Replayed);
        }
        self.wills.insert(hadd, (announced.since, connection));
        Ok(())
    }

    /// Forgets the signatures whose stamps are out of the window anyway, once `seen` has
    /// doubled since the last time (amortised: a constant cost per message).
    fn forget_old(&mut self, now_ms: u64) {
        if self.seen.len() < self.clean_at {
            return;
        }
        let window = self.window_ms;
        self.seen
            .retain(|_, stamp| stamp.abs_diff(now_ms) <= window);
        self.clean_at = (2 * self.seen.len()).max(CLEAN_AT);
    }

    /// How many signatures are remembered (bounded by the signed traffic of one window).
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

/// Writes `tree` as compact JSON with the keys of every map sorted; the top level's
/// signature is left out when `top`.
fn canonical(tree: &Data, top: bool, out: &mut Vec<u8>) {
    match tree {
        Data::Object(fields) => {
            let mut keys: Vec<&String> = fields
                .keys()
                .filter(|key| !(top && key.as_str() == SIGNATURE))
                .collect();
            keys.sort();
            out.push(b'{');
            for (at, key) in keys.into_iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                canonical(&fields[key], false, out);
            }
            out.push(b'}');
        }
        Data::Array(items) => {
            out.push(b'[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                canonical(item, false, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    text
}

/// The bytes of a signature written as 64 lower-case hex digits (the one spelling [`hex`]
/// writes); `None` for anything else.
fn unhex(text: &str) -> Option<Signature> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(bytes)
}

pub mod requests;

#[cfg(test)]
mod tests;
