//! Logs through tracing, to stderr: level from `RUST_LOG`, else from `-v`; as text for people
//! or as one JSON object per line (`--log-format json`) for journald and log collectors.
//!
//! `RUST_LOG` takes tracing's filter directives: `RUST_LOG=debug`, or per module,
//! `RUST_LOG=info,janitoo_actors::bridge=debug`. A request is followed across the actors by
//! its `request` span (`hadd`, `uuid`, `request_id`), and the network controller's decisions
//! carry a `core` span naming what it was handling.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line, with the spans' fields (journald, log collectors).
    Json,
}

/// Sets up the subscriber: info by default, debug with -v, trace with -vv. The embedded
/// broker's own logs are off unless RUST_LOG says otherwise (rumqttd logs an ERROR for every
/// client that disconnects cleanly).
pub fn init(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},rumqttd=off,rumqttc=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
