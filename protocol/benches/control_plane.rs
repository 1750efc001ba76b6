//! Cost of the signed control plane: signing a primary heartbeat as it is sent, and believing
//! one as it is received (decode, HMAC-SHA256 check, replay bookkeeping).
//!
//! Run: `cargo bench -p janitoo-protocol --bench control_plane`. Target: each under 20 µs.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use janitoo_protocol::control_plane::{ControlKey, ControlPlane, DEFAULT_WINDOW_MS};
use janitoo_protocol::heartbeat::ResolvHeartbeat;
use janitoo_protocol::{Codec, Hadd, Message, NodeState, Topic};

const NOW: u64 = 1_800_000_000_000;

fn plane(me: Hadd) -> ControlPlane {
    let key = ControlKey::from_secret(b"a shared secret of the network's controllers").unwrap();
    ControlPlane::new(key, me, NOW, DEFAULT_WINDOW_MS)
}

fn control_plane(c: &mut Criterion) {
    let primary = plane(Hadd::new(1, 0));
    let beat = Message::ResolvHeartbeat(ResolvHeartbeat {
        hadd: Hadd::new(1, 0),
        state: NodeState::Online,
        epoch: Some(0x10001),
    });
    let topic = Topic::ResolvHeartbeat;
    for codec in [Codec::Json, Codec::MessagePack] {
        let mut stamp = NOW;
        c.bench_function(&format!("control_plane/sign/{codec}"), |b| {
            b.iter(|| {
                stamp += 1;
                black_box(primary.seal(&topic, &beat, codec, stamp, 1))
            })
        });
        // Distinct signed beats (a replay would be refused early), received in turn.
        let payloads: Vec<Vec<u8>> = (0..10_000u64)
            .map(|at| primary.seal(&topic, &beat, codec, NOW + at, 1))
            .collect();
        let mut receiver = plane(Hadd::new(2, 0));
        let mut next = 0;
        c.bench_function(&format!("control_plane/verify/{codec}"), |b| {
            b.iter(|| {
                let payload = &payloads[next % payloads.len()];
                next += 1;
                if next % payloads.len() == 0 {
                    receiver = plane(Hadd::new(2, 0));
                }
                let tree = codec.decode_tree(payload).ok();
                black_box(receiver.admit(&topic, tree.as_ref(), NOW + 5_000))
            })
        });
    }
}

criterion_group!(benches, control_plane);
criterion_main!(benches);
