//! Logs through tracing, to stderr: level from `RUST_LOG`, else from `-v`.

use tracing_subscriber::EnvFilter;

/// Sets up the subscriber: info by default, debug with -v, trace with -vv. The embedded
/// broker's own logs are off unless RUST_LOG says otherwise (rumqttd logs an ERROR for every
/// client that disconnects cleanly).
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},rumqttd=off,rumqttc=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
