//! `janitoo top`: every controller of the network and its actors, live, from the metrics
//! system values each controller publishes (see `janitoo_actors::process_metrics`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use janitoo_actors::ActorKind;
use janitoo_protocol::topic::filters;
use janitoo_protocol::{Data, DiscoveryData, Hadd, InfoKind, Message, Request, Topic};
use tokio::time::Instant;

use crate::connect::BrokerArg;
use crate::run::Failure;
use crate::tools::{emit, table, ToolClient};
use crate::{parse_seconds, seconds};

/// The order of `janitoo top`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// Messages waiting, most first.
    Backlog,
    /// Handler latency p99, slowest first.
    Latency,
    /// Messages handled, most first.
    Handled,
}

/// The arguments of `janitoo top`.
#[derive(clap::Args)]
pub struct TopArgs {
    #[command(flatten)]
    broker: BrokerArg,
    /// The order of the actors.
    #[arg(long, value_enum, default_value = "backlog")]
    sort: SortBy,
    /// Print once after --wait instead of refreshing.
    #[arg(long)]
    once: bool,
    /// With --once: JSON instead of tables.
    #[arg(long, requires = "once")]
    json: bool,
    /// With --once: seconds to gather metrics (controllers publish them every 10 s; a
    /// discovery asks for them at start).
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    wait: f64,
}

/// The metrics values seen, by controller node, then uuid, then instance.
#[derive(Default)]
pub struct TopView {
    values: BTreeMap<Hadd, BTreeMap<String, BTreeMap<u32, Data>>>,
}

fn is_metric(uuid: &str) -> bool {
    ["actor_", "bridge_", "supervisor_"]
        .iter()
        .any(|prefix| uuid.starts_with(prefix))
}

impl TopView {
    /// Takes in a message; true when it carried metrics.
    pub fn absorb(&mut self, topic: &Topic, message: &Message) -> bool {
        let mut changed = false;
        let mut put = |hadd: Hadd, uuid: &str, index: u32, data: &Data| {
            if is_metric(uuid) {
                self.values
                    .entry(hadd)
                    .or_default()
                    .entry(uuid.to_owned())
                    .or_default()
                    .insert(index, data.clone());
                changed = true;
            }
        };
        match (topic, message) {
            (Topic::Value { hadd, .. }, Message::Value(publication)) => {
                for value in publication.instances() {
                    put(*hadd, &value.uuid, value.index, &value.data);
                }
            }
            (_, Message::DiscoveryReply(reply)) => {
                if let DiscoveryData::Values(by_node) = &reply.data {
                    for (hadd, values) in by_node {
                        for (uuid, instances) in values {
                            for (index, value) in instances {
                                put(*hadd, uuid, *index, &value.data);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        changed
    }

    fn number(&self, hadd: Hadd, uuid: &str, index: u32) -> u64 {
        self.values
            .get(&hadd)
            .and_then(|values| values.get(uuid))
            .and_then(|instances| instances.get(&index))
            .and_then(Data::as_f64)
            .map_or(0, |number| number as u64)
    }

    fn text(&self, hadd: Hadd, uuid: &str) -> String {
        self.values
            .get(&hadd)
            .and_then(|values| values.get(uuid))
            .and_then(|instances| instances.get(&0))
            .map(|data| data.to_string())
            .unwrap_or_else(|| "-".to_owned())
    }

    /// Whether any controller was seen.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// One row per controller and actor kind, sorted.
    pub fn rows(&self, sort: SortBy) -> Vec<(Hadd, ActorKind, [u64; 5])> {
        let mut rows = Vec::new();
        for hadd in self.values.keys() {
            for kind in ActorKind::ALL {
                let index = kind.index() as u32;
                let get = |uuid| self.number(*hadd, uuid, index);
                rows.push((
                    *hadd,
                    kind,
                    [
                        get("actor_handled"),
                        get("actor_backlog"),
                        get("actor_latency_p50"),
                        get("actor_latency_p99"),
                        get("actor_restarts"),
                    ],
                ));
            }
        }
        let key = |row: &(Hadd, ActorKind, [u64; 5])| match sort {
            SortBy::Backlog => (row.2[1], row.2[3]),
            SortBy::Latency => (row.2[3], row.2[2]),
            SortBy::Handled => (row.2[0], 0),
        };
        rows.sort_by(|a, b| key(b).cmp(&key(a)).then(a.0.cmp(&b.0)));
        rows
    }

    /// The view as tables.
    pub fn render(&self, sort: SortBy) -> String {
        let controllers: Vec<[String; 6]> = self
            .values
            .keys()
            .map(|hadd| {
                let nodes: u64 = (0..6)
                    .map(|i| self.number(*hadd, "supervisor_nodes", i))
                    .sum();
                [
                    hadd.to_string(),
                    self.text(*hadd, "bridge_queue_depth"),
                    self.text(*hadd, "bridge_publishes_per_s"),
                    self.text(*hadd, "bridge_reconnects"),
                    match self.number(*hadd, "supervisor_epoch", 0) {
                        0 => "-".to_owned(),
                        epoch if self.number(*hadd, "supervisor_primary", 0) == 1 => {
                            format!("{epoch:#x} primary")
                        }
                        epoch => format!("{epoch:#x}"),
                    },
                    if nodes == 0 {
                        "-".to_owned()
                    } else {
                        format!(
                            "{nodes} ({} online, {} failed, {} dead)",
                            self.number(*hadd, "supervisor_nodes", 0),
                            self.number(*hadd, "supervisor_nodes", 2),
                            self.number(*hadd, "supervisor_nodes", 3)
                        )
                    },
                ]
            })
            .collect();
        let mut out = table(
            &[
                "CONTROLLER",
                "QUEUE",
                "PUBLISH/S",
                "RECONNECTS",
                "EPOCH",
                "MAP NODES",
            ],
            &controllers,
        );
        out.push('\n');
        let rows: Vec<[String; 7]> = self
            .rows(sort)
            .into_iter()
            .map(|(hadd, kind, numbers)| {
                [
                    hadd.to_string(),
                    kind.name().to_owned(),
                    numbers[0].to_string(),
                    numbers[1].to_string(),
                    numbers[2].to_string(),
                    numbers[3].to_string(),
                    numbers[4].to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "CONTROLLER",
                "ACTOR",
                "HANDLED",
                "BACKLOG",
                "P50 µs",
                "P99 µs",
                "RESTARTS",
            ],
            &rows,
        ));
        out
    }

    /// The view as JSON: controllers with their metrics values.
    pub fn json(&self) -> Data {
        let controllers: serde_json::Map<String, Data> = self
            .values
            .iter()
            .map(|(hadd, values)| {
                let values: serde_json::Map<String, Data> = values
                    .iter()
                    .map(|(uuid, instances)| {
                        let list: Vec<Data> = instances.values().cloned().collect();
                        (uuid.clone(), Data::from(list))
                    })
                    .collect();
                (hadd.to_string(), Data::Object(values))
            })
            .collect();
        serde_json::json!({
            "actors": ActorKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "controllers": controllers,
        })
    }
}

/// `janitoo top`: refreshes every second until Ctrl-C; with `once`, prints once after `wait`.
pub fn top(args: TopArgs) -> Result<(), Failure> {
    let TopArgs {
        broker,
        sort,
        once,
        json,
        wait,
    } = args;
    let (broker, wait) = (&broker.settings()?, seconds(wait));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Other(err.into()))?;
    runtime.block_on(async {
        let mut tool = ToolClient::connect(
            broker,
            &[filters::SYSTEM_VALUES, filters::BROADCAST_REPLIES],
            Duration::from_secs(3),
        )
        .await?;
        let ask = Request::info(InfoKind::Systems, tool.hadd);
        tool.send(&Topic::BroadcastRequest, Message::Request(ask))
            .await?;
        let mut view = TopView::default();
        let live = !once && std::io::stdout().is_terminal();
        let started = Instant::now();
        let mut next_frame = started + Duration::from_secs(1);
        // Armed once: a Ctrl-C that comes while a frame is printed still stops the loop.
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let until = if once { started + wait } else { next_frame };
            let received = tokio::select! {
                received = tool.next(until) => received?,
                _ = &mut ctrl_c => return Ok(()),
            };
            if let Some(received) = received {
                if let Ok((topic, message)) = received.decode() {
                    view.absorb(&topic, &message);
                }
                continue;
            }
            if once {
                break;
            }
            next_frame = Instant::now() + Duration::from_secs(1);
            let mut frame = String::new();
            if live {
                frame.push_str("\x1b[2J\x1b[H");
            }
            frame.push_str(&format!(
                "janitoo top — {} — sorted by {sort:?} — {}\n",
                broker.address(),
                if view.is_empty() {
                    "waiting for metrics (every 10 s)…"
                } else {
                    "Ctrl-C quits"
                }
            ));
            frame.push_str(&view.render(sort));
            if !emit(&frame) {
                return Ok(());
            }
        }
        if view.is_empty() {
            return Err(Failure::Other(anyhow::anyhow!(
                "no controller published metrics within {wait:?}"
            )));
        }
        if json {
            emit(&format!("{}\n", view.json()));
        } else {
            emit(&view.render(sort));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use janitoo_protocol::Codec;

    use super::*;

    fn feed(view: &mut TopView, topic: &str, payload: &str) {
        let (topic, message) = Message::decode_on(topic, payload.as_bytes(), Codec::Json).unwrap();
        view.absorb(&topic, &message);
    }

    #[test]
    fn rows_sort_by_backlog_or_latency() {
        let mut view = TopView::default();
        for (hadd, backlog, p99) in [("0220/0000", 5, 100), ("0300/0000", 1, 9000)] {
            let (ctrl, node) = hadd.split_once('/').unwrap();
            feed(
                &mut view,
                &format!("/values/system/{ctrl}/{node}/actor_backlog"),
                &format!(
                    r#"{{"0":{{"uuid":"actor_backlog","index":0,"genre":4,"data":0}},"2":{{"uuid":"actor_backlog","index":2,"genre":4,"data":{backlog}}}}}"#
                ),
            );
            feed(
                &mut view,
                &format!("/values/system/{ctrl}/{node}/actor_latency_p99"),
                &format!(r#"{{"uuid":"actor_latency_p99","index":3,"genre":4,"data":{p99}}}"#),
            );
        }
        let by_backlog = view.rows(SortBy::Backlog);
        assert_eq!(
            (by_backlog[0].0, by_backlog[0].1),
            (Hadd::new(220, 0), ActorKind::Value)
        );
        let by_latency = view.rows(SortBy::Latency);
        assert_eq!(
            (by_latency[0].0, by_latency[0].1),
            (Hadd::new(300, 0), ActorKind::Bridge)
        );
        let text = view.render(SortBy::Backlog);
        assert!(text.contains("0220/0000   value"), "{text}");
        assert_eq!(
            view.json()["controllers"]["0220/0000"]["actor_backlog"][1],
            5
        );
    }
}
