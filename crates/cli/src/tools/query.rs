//! `janitoo query`: discovery of the whole network (a broadcast), or of one node.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use janitoo_protocol::topic::filters;
use janitoo_protocol::{
    Data, Genre, Hadd, InfoKind, Message, NodeInfo, Request, Topic, ValueDescriptor,
};
use tokio::time::Instant;

use super::client::{hadd_argument, no_answer, nodes_of, values_of, ToolClient};
use super::output::{emit, print_json, show_data, table};
use super::{block_on, GenreArg};
use crate::connect::BrokerArg;
use crate::run::Failure;
use crate::{parse_seconds, seconds};

/// What `janitoo query` asks.
#[derive(clap::Subcommand)]
pub enum QueryCommand {
    /// Broadcast discovery: every node of every controller that answers.
    Network {
        /// The broker.
        #[command(flatten)]
        broker: BrokerArg,
        /// Seconds to wait for answers at most.
        #[arg(long, default_value = "5", value_parser = parse_seconds)]
        wait: f64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One node: its info and values.
    Node {
        /// The broker.
        #[command(flatten)]
        broker: BrokerArg,
        /// The node's address, like 0220/0001.
        hadd: String,
        /// Only the values of this genre.
        #[arg(long, value_enum)]
        genre: Option<GenreArg>,
        /// Seconds to wait for each answer.
        #[arg(long, default_value = "3", value_parser = parse_seconds)]
        wait: f64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `janitoo query network` or `janitoo query node`.
pub fn query(what: QueryCommand) -> Result<(), Failure> {
    match what {
        QueryCommand::Network { broker, wait, json } => query_network(broker, seconds(wait), json),
        QueryCommand::Node {
            broker,
            hadd,
            genre,
            wait,
            json,
        } => query_node(broker, &hadd, genre.map(Into::into), seconds(wait), json),
    }
}

/// `janitoo query node`: its node info and its values, by genre.
fn query_node(
    broker: BrokerArg,
    hadd: &str,
    genre: Option<Genre>,
    wait: Duration,
    json: bool,
) -> Result<(), Failure> {
    let hadd = hadd_argument(hadd)?;
    let broker = broker.settings()?;
    block_on(async {
        let mut tool = ToolClient::connect(&broker, &[], Duration::from_secs(3)).await?;
        let mut info = Request::info(InfoKind::Nodes, tool.hadd);
        info.hadd = Some(hadd);
        let node = match tool.ask(info, wait).await? {
            Some(Message::DiscoveryReply(reply)) => nodes_of(&reply).remove(&hadd),
            _ => return Err(no_answer(&format!("node {hadd}"), wait)),
        };
        let Some(node) = node else {
            return Err(Failure::Refused(format!(
                "404 node {hadd}: its controller answered, without it"
            )));
        };
        let genres = genre.map_or(Genre::ALL.to_vec(), |genre| vec![genre]);
        let mut values: Vec<ValueDescriptor> = Vec::new();
        for genre in genres {
            let mut ask = Request::info(InfoKind::for_genre(genre), tool.hadd);
            ask.hadd = Some(hadd);
            if let Some(Message::DiscoveryReply(reply)) = tool.ask(ask, wait).await? {
                values.extend(values_of(&reply, hadd));
            }
        }
        if json {
            let values: Vec<Data> = values.iter().map(ValueDescriptor::to_tree).collect();
            print_json(&serde_json::json!({ "node": node.to_tree(), "values": values }));
        } else {
            emit(&node_table(&node, &values));
        }
        Ok(())
    })
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

/// `janitoo query network`: a broadcast discovery; answers are shown as they arrive (on
/// stderr), and it ends when every controller seen beating has answered and none answered for
/// a second, or after `wait`.
fn query_network(broker: BrokerArg, wait: Duration, json: bool) -> Result<(), Failure> {
    let broker = broker.settings()?;
    block_on(async {
        let mut tool = ToolClient::connect(
            &broker,
            &[filters::HEARTBEATS, filters::BROADCAST_REPLIES],
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
