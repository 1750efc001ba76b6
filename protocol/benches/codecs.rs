//! Decode and encode throughput of the two codecs on a realistic value message: the
//! `/values/user/<hadd>/temperature` publication a DHT sensor node sends on every poll.
//!
//! Run: `cargo bench -p janitoo-protocol --bench codecs`. Criterion prints the time per message
//! and messages/s ("elem/s"); the payload sizes are printed first.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use janitoo_protocol::{Codec, Message, Topic};

const TOPIC: &str = "/values/user/0220/0001/temperature";
const PAYLOAD: &str = r#"{"entry_name": "sensor_temperature", "uuid": "temperature", "node_uuid": "rpibasic__ambiance", "voice_uuid": null, "hadd": "0220/0001", "cmd_class": 49, "is_readonly": true, "is_writeonly": false, "default": null, "label": "Temperature", "help": "The temperature", "units": "°C", "list_items": null, "max": null, "min": null, "genre": 2, "type": 3, "index": 0, "is_polled": true, "poll_delay": 300, "reply_hadd": null, "data": 21.4}"#;

fn codecs(c: &mut Criterion) {
    let topic = Topic::parse(TOPIC).unwrap();
    let message = Message::decode(&topic, PAYLOAD.as_bytes(), Codec::Json).unwrap();
    let mut group = c.benchmark_group("value-message");
    group.throughput(Throughput::Elements(1));
    for codec in [Codec::Json, Codec::MessagePack] {
        let payload = message.encode(codec);
        eprintln!("{codec}: {} bytes per message", payload.len());
        group.bench_function(format!("decode/{codec}"), |b| {
            b.iter(|| Message::decode(&topic, black_box(&payload), codec).unwrap())
        });
        group.bench_function(format!("encode/{codec}"), |b| {
            b.iter(|| black_box(&message).encode(codec))
        });
    }
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
