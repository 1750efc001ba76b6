//! `janitoo spy`: every message of the network, decoded, one line each.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use janitoo_protocol::{Data, DiscoveryData, Message};
use tokio::time::Instant;

use super::block_on;
use super::client::{Received, ToolClient};
use super::output::{emit, show_data};
use crate::connect::BrokerArg;
use crate::run::Failure;
use crate::{parse_seconds, seconds};

/// What `janitoo spy` watches, and for how long.
#[derive(clap::Args)]
pub struct SpyArgs {
    #[command(flatten)]
    broker: BrokerArg,
    /// Only the topics matching this MQTT filter.
    #[arg(short, long, default_value = "#")]
    filter: String,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after N messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after SECONDS.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<f64>,
}

/// `janitoo spy`: every message under `filter`, one line each, decoded; what does not decode
/// is shown raw. Stops after `count` messages or `duration`, else on Ctrl-C.
pub fn spy(args: SpyArgs) -> Result<(), Failure> {
    let SpyArgs {
        broker,
        filter,
        json,
        count,
        duration,
    } = args;
    let duration = duration.map(seconds);
    if !rumqttc::valid_filter(&filter) {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--filter {filter:?}: not an MQTT topic filter"
        )));
    }
    let broker = broker.settings()?;
    let colour = !json && std::io::stdout().is_terminal();
    block_on(async {
        let mut tool = ToolClient::connect(&broker, &[&filter], Duration::from_secs(3)).await?;
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
        Message::LeaseRecord(_) => "lease-record",
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
