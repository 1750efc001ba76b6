//! Cost of the liveness state machine at network scale: a primary's map of 10,000 nodes.
//!
//! Run: `cargo bench -p janitoo-protocol --bench liveness`. `tick` is one timeout pass over
//! every node (the primary runs one per second); `heartbeat` is one node's own heartbeat.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use janitoo_protocol::liveness::{Liveness, LivenessConfig};
use janitoo_protocol::{Hadd, NodeState};

fn network(nodes: u16) -> Liveness {
    let mut liveness = Liveness::new(LivenessConfig::default());
    for index in 0..nodes {
        let hadd = Hadd::new(100 + index / 100, index % 100);
        liveness.set_period(hadd, Duration::from_secs(30), Duration::ZERO);
        liveness.on_heartbeat(hadd, NodeState::Online, Duration::ZERO);
    }
    liveness
}

fn liveness(c: &mut Criterion) {
    for nodes in [1_000u16, 10_000] {
        let map = network(nodes);
        c.bench_function(&format!("liveness/tick/{nodes}-nodes"), |b| {
            b.iter_batched_ref(
                || map.clone(),
                |map| black_box(map.on_tick(Duration::from_secs(10))),
                BatchSize::LargeInput,
            )
        });
        let mut beating = map.clone();
        let mut second = 0u64;
        c.bench_function(&format!("liveness/heartbeat/{nodes}-nodes"), |b| {
            b.iter(|| {
                second += 1;
                black_box(beating.on_heartbeat(
                    Hadd::new(150, 7),
                    NodeState::Online,
                    Duration::from_secs(second),
                ))
            })
        });
    }
}

criterion_group!(benches, liveness);
criterion_main!(benches);
