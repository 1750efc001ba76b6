//! The process's metrics in the Prometheus text format (version 0.0.4), for `GET /metrics`.

use std::fmt::Write as _;

use crate::metrics::{ActorKind, Counter, Metrics, LATENCY_BUCKETS_MICROS, NODE_STATES};

/// Writes one metric family: its help, its type, its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn single(counter: &Counter) -> Vec<(String, f64)> {
    vec![(String::new(), counter.get() as f64)]
}

fn per_actor(value: impl Fn(ActorKind) -> u64) -> Vec<(String, f64)> {
    ActorKind::ALL
        .iter()
        .map(|kind| {
            (
                format!("{{actor=\"{}\"}}", kind.name()),
                value(*kind) as f64,
            )
        })
        .collect()
}

/// The text of `GET /metrics`.
pub fn prometheus_text(metrics: &Metrics) -> String {
    let mut out = String::with_capacity(8 * 1024);
    family(
        &mut out,
        "janitoo_actor_messages_sent_total",
        "counter",
        "Messages sent to the actors of each kind.",
        &per_actor(|kind| metrics.actor(kind).sent.get()),
    );
    family(
        &mut out,
        "janitoo_actor_messages_handled_total",
        "counter",
        "Messages handled by the actors of each kind.",
        &per_actor(|kind| metrics.actor(kind).handled.get()),
    );
    family(
        &mut out,
        "janitoo_actor_backlog",
        "gauge",
        "Messages sent to the actors of each kind and not handled yet.",
        &per_actor(|kind| metrics.actor(kind).backlog()),
    );
    family(
        &mut out,
        "janitoo_actor_restarts_total",
        "counter",
        "Restarts of actors of each kind after a panic.",
        &per_actor(|kind| metrics.actor(kind).restarts.get()),
    );
    let name = "janitoo_actor_handler_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Handler latency of the actors of each kind."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for kind in ActorKind::ALL {
        let histogram = &metrics.actor(kind).latency;
        let counts = histogram.counts();
        let mut cumulative = 0;
        for (at, count) in counts.iter().enumerate() {
            cumulative += count;
            let bound = LATENCY_BUCKETS_MICROS
                .get(at)
                .map_or("+Inf".to_owned(), |micros| {
                    format!("{}", *micros as f64 / 1e6)
                });
            let _ = writeln!(
                out,
                "{name}_bucket{{actor=\"{}\",le=\"{bound}\"}} {cumulative}",
                kind.name()
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{actor=\"{}\"}} {}",
            kind.name(),
            histogram.sum_micros() as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "{name}_count{{actor=\"{}\"}} {cumulative}",
            kind.name()
        );
    }
    let counters: [(&str, &str, &str, &Counter); 26] = [
        (
            "janitoo_mqtt_received_total",
            "counter",
            "Messages received from the broker.",
            &metrics.received,
        ),
        (
            "janitoo_mqtt_decode_errors_total",
            "counter",
            "Received messages that could not be decoded.",
            &metrics.decode_errors,
        ),
        (
            "janitoo_mqtt_retained_ignored_total",
            "counter",
            "Retained messages ignored (Janitoo never retains).",
            &metrics.retained,
        ),
        (
            "janitoo_mqtt_oversize_total",
            "counter",
            "Messages over [limits] max_payload, received (ignored or answered 400) or not sent.",
            &metrics.oversize,
        ),
        (
            "janitoo_mqtt_unrouted_total",
            "counter",
            "Requests for a node this process does not serve.",
            &metrics.unrouted,
        ),
        (
            "janitoo_bridge_published_total",
            "counter",
            "Messages handed to the MQTT client.",
            &metrics.published,
        ),
        (
            "janitoo_bridge_dropped_total",
            "counter",
            "Messages dropped because their outbound queue was full.",
            &metrics.dropped,
        ),
        (
            "janitoo_bridge_queue_depth",
            "gauge",
            "Messages waiting in the outbound queues (the protocol's and the retained publications').",
            &metrics.queue_depth,
        ),
        (
            "janitoo_bridge_connections_total",
            "counter",
            "Connections to the broker, the first included.",
            &metrics.connections,
        ),
        (
            "janitoo_bridge_reconnects_total",
            "counter",
            "Connection losses (each followed by a reconnection).",
            &metrics.disconnections,
        ),
        (
            "janitoo_requests_total",
            "counter",
            "Requests handled by the buses.",
            &metrics.requests,
        ),
        (
            "janitoo_requests_refused_total",
            "counter",
            "Requests answered with a 4xx or 5xx status.",
            &metrics.refused,
        ),
        (
            "janitoo_requests_in_flight",
            "gauge",
            "Requests admitted and not answered yet: the work queued in the actors.",
            &metrics.in_flight,
        ),
        (
            "janitoo_requests_shed_total",
            "counter",
            "Requests refused at once (503) or dropped because too many were in flight.",
            &metrics.shed,
        ),
        (
            "janitoo_settings_rewrites_total",
            "counter",
            "Rewrites of the configuration file (each covers a batch of sets).",
            &metrics.settings_rewrites,
        ),
        (
            "janitoo_settings_write_failures_total",
            "counter",
            "Write-backs of settings that failed (those sets were answered 500).",
            &metrics.write_failures,
        ),
        (
            "janitoo_control_refused_total",
            "counter",
            "Control messages not believed on a keyed network (unsigned, bad signature, stale, replayed).",
            &metrics.control_refused,
        ),
        (
            "janitoo_supervisor_nodes_refused_total",
            "counter",
            "Nodes heard beyond the cap on watched nodes ([network] max_nodes), refused.",
            &metrics.nodes_refused,
        ),
        (
            "janitoo_supervisor_epoch",
            "gauge",
            "The election epoch this process holds or follows.",
            &metrics.epoch,
        ),
        (
            "janitoo_supervisor_primary",
            "gauge",
            "1 while this process is the primary network controller.",
            &metrics.primary,
        ),
        (
            "janitoo_supervisor_fenced_total",
            "counter",
            "Messages of an older epoch, or not from the primary, ignored.",
            &metrics.fenced,
        ),
        (
            "janitoo_supervisor_forged_total",
            "counter",
            "Messages with an epoch their sender could not have claimed, refused.",
            &metrics.forged,
        ),
        (
            "janitoo_supervisor_dispatched_total",
            "counter",
            "Heartbeats published on behalf of silent nodes.",
            &metrics.dispatched,
        ),
        (
            "janitoo_supervisor_home_assistant_publications_total",
            "counter",
            "Retained publications for Home Assistant: discovery configs, availability, clearings.",
            &metrics.announced,
        ),
        (
            "janitoo_supervisor_answers_total",
            "counter",
            "Answers to the network controller (Home Assistant's sets) that said the request was done.",
            &metrics.answered,
        ),
        (
            "janitoo_supervisor_answers_refused_total",
            "counter",
            "Answers to the network controller (Home Assistant's sets) that refused the request.",
            &metrics.answers_refused,
        ),
    ];
    for (name, kind, help, counter) in counters {
        family(&mut out, name, kind, help, &single(counter));
    }
    let states: Vec<(String, f64)> = NODE_STATES
        .iter()
        .zip(&metrics.nodes_by_state)
        .map(|(state, count)| (format!("{{state=\"{state}\"}}"), count.get() as f64))
        .collect();
    family(
        &mut out,
        "janitoo_supervisor_nodes",
        "gauge",
        "Nodes of the network map by liveness state.",
        &states,
    );
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn every_family_is_declared_and_histograms_are_cumulative() {
        let metrics = Arc::new(Metrics::default());
        metrics.sent(ActorKind::Value);
        metrics.sent(ActorKind::Value);
        drop(metrics.handling(ActorKind::Value));
        metrics.nodes_by_state[0].set(12);
        let text = prometheus_text(&metrics);
        assert!(
            text.contains("janitoo_actor_backlog{actor=\"value\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("janitoo_actor_messages_handled_total{actor=\"value\"} 1\n"));
        assert!(
            text.contains("janitoo_actor_handler_seconds_bucket{actor=\"value\",le=\"+Inf\"} 1\n")
        );
        assert!(text.contains("janitoo_actor_handler_seconds_count{actor=\"bus\"} 0\n"));
        assert!(text.contains("janitoo_supervisor_nodes{state=\"ONLINE\"} 12\n"));
        // Every sample belongs to a declared family, and buckets never decrease.
        let mut declared = Vec::new();
        let mut last_bucket: Option<(String, f64)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            let family = name.split('{').next().unwrap();
            assert!(
                declared.iter().any(|d| family.starts_with(d.as_str())),
                "{line}"
            );
            if family.ends_with("_bucket") {
                let actor = name.split(',').next().unwrap().to_owned();
                if let Some((previous_actor, previous)) = &last_bucket {
                    if *previous_actor == actor {
                        assert!(value >= *previous, "{line}");
                    }
                }
                last_bucket = Some((actor, value));
            }
        }
    }
}
