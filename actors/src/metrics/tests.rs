use super::*;

#[test]
fn the_backlog_is_what_was_sent_and_not_handled() {
    let metrics = Arc::new(Metrics::default());
    for _ in 0..3 {
        metrics.sent(ActorKind::Value);
    }
    drop(metrics.handling(ActorKind::Value));
    let meter = metrics.actor(ActorKind::Value);
    assert_eq!((meter.handled.get(), meter.backlog()), (1, 2));
    assert_eq!(metrics.actor(ActorKind::Node).backlog(), 0);
    assert_eq!(meter.latency.counts().iter().sum::<u64>(), 1);
}

#[test]
fn quantiles_are_bucket_bounds() {
    let histogram = Histogram::default();
    assert_eq!(histogram.quantile(0.5), None);
    for micros in [3, 4, 7, 40, 900, 1_000_000] {
        histogram.record(micros);
    }
    assert_eq!(histogram.quantile(0.5), Some(10));
    assert_eq!(histogram.quantile(0.66), Some(50));
    assert_eq!(histogram.quantile(0.8), Some(1_000));
    assert_eq!(histogram.quantile(1.0), Some(500_000));
    assert_eq!(histogram.sum_micros(), 1_000_954);
}

#[test]
fn uninstrumented_counts_nothing_per_message() {
    let metrics = Arc::new(Metrics::default());
    metrics.set_instrumented(false);
    metrics.sent(ActorKind::Bus);
    drop(metrics.handling(ActorKind::Bus));
    assert_eq!(metrics.actor(ActorKind::Bus).handled.get(), 0);
    assert_eq!(metrics.actor(ActorKind::Bus).sent.get(), 0);
}

#[test]
fn a_gauge_counts_up_to_its_limit_and_never_below_zero() {
    let gauge = Gauge::default();
    assert!(gauge.increment_below(2));
    assert!(gauge.increment_below(2));
    assert!(!gauge.increment_below(2), "at the limit");
    assert_eq!(gauge.get(), 2);
    for _ in 0..3 {
        gauge.decrement();
    }
    assert_eq!(gauge.get(), 0);
}

/// The samples of `text`, by their name with labels.
fn samples(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("a sample");
            (name, value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn the_exposition_is_the_registry_with_the_names_dashboards_know() {
    let metrics = Arc::new(Metrics::default());
    metrics.sent(ActorKind::Value);
    metrics.sent(ActorKind::Value);
    drop(metrics.handling(ActorKind::Value));
    metrics.nodes_by_state.set([12, 0, 1, 0, 0, 0]);
    metrics.dropped.increment();
    metrics.epoch.set(0x10002);
    let text = metrics.exposition();
    let samples = samples(&text);
    let value = |name: &str| {
        samples
            .iter()
            .find(|(sample, _)| *sample == name)
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
    };
    assert_eq!(value("janitoo_actor_backlog{actor=\"value\"}"), 1.0);
    assert_eq!(
        value("janitoo_actor_messages_sent_total{actor=\"value\"}"),
        2.0
    );
    assert_eq!(
        value("janitoo_actor_messages_handled_total{actor=\"value\"}"),
        1.0
    );
    assert_eq!(
        value("janitoo_actor_handler_seconds_bucket{le=\"+Inf\",actor=\"value\"}"),
        1.0
    );
    assert_eq!(
        value("janitoo_actor_handler_seconds_count{actor=\"bus\"}"),
        0.0
    );
    assert_eq!(value("janitoo_supervisor_nodes{state=\"ONLINE\"}"), 12.0);
    assert_eq!(value("janitoo_supervisor_nodes{state=\"FAILED\"}"), 1.0);
    assert_eq!(value("janitoo_bridge_dropped_total"), 1.0);
    assert_eq!(value("janitoo_supervisor_epoch"), 65538.0);
    assert_eq!(value("janitoo_mqtt_received_total"), 0.0);
    assert!(text.contains("# TYPE janitoo_actor_handler_seconds histogram\n"));
    assert!(text.contains("# TYPE janitoo_requests_in_flight gauge\n"));
    assert!(
        text.contains("# HELP janitoo_bridge_dropped Messages dropped because their outbound queue was full.\n"),
        "the help is the declaration's, one period"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn histogram_buckets_are_cumulative_and_end_with_the_count() {
    let metrics = Arc::new(Metrics::default());
    for micros in [3, 40, 40, 900, 1_000_000] {
        metrics.actor(ActorKind::Bridge).latency.record(micros);
    }
    let text = metrics.exposition();
    let buckets: Vec<f64> = samples(&text)
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with("janitoo_actor_handler_seconds_bucket{")
                && name.ends_with(",actor=\"bridge\"}")
        })
        .map(|(_, value)| value)
        .collect();
    assert_eq!(buckets.len(), LATENCY_BUCKETS_MICROS.len() + 1);
    assert!(
        buckets.windows(2).all(|pair| pair[0] <= pair[1]),
        "{buckets:?}"
    );
    assert_eq!(buckets[0], 1.0, "3 µs is within the first bucket (5 µs)");
    assert_eq!(buckets.last(), Some(&5.0));
    assert!(text.contains("janitoo_actor_handler_seconds_sum{actor=\"bridge\"} 1.000983\n"));
    assert!(
        text.contains("janitoo_actor_handler_seconds_bucket{le=\"0.000005\",actor=\"bridge\"} 1\n"),
        "bounds in seconds: {text}"
    );
    assert!(text.contains("janitoo_actor_handler_seconds_bucket{le=\"0.25\",actor=\"bridge\"} 4\n"));
}

#[test]
fn every_system_value_reads_its_own_metric() {
    let metrics = Metrics::default();
    let uuids: Vec<&str> = SYSTEM_VALUES.iter().map(|value| value.uuid).collect();
    let mut unique = uuids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), uuids.len(), "a uuid declared twice");
    metrics.dropped.increment();
    metrics.shed.increment();
    metrics.shed.increment();
    metrics.epoch.set(7);
    let read = |uuid: &str| {
        let value = SYSTEM_VALUES
            .iter()
            .find(|value| value.uuid == uuid)
            .unwrap();
        (value.read)(&metrics)
    };
    assert_eq!(read("bridge_dropped"), 1);
    assert_eq!(read("requests_shed"), 2);
    assert_eq!(read("supervisor_epoch"), 7);
    assert_eq!(read("mqtt_received"), 0);
}

#[test]
fn restarts_are_the_value_and_node_actors_ones() {
    let metrics = Metrics::default();
    metrics.actor(ActorKind::Value).restarts.increment();
    metrics.actor(ActorKind::Value).restarts.increment();
    metrics.actor(ActorKind::Node).restarts.increment();
    metrics.actor(ActorKind::Bus).restarts.increment();
    assert_eq!(metrics.restarts(), 3);
}
