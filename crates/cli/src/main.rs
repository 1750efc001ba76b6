//! `janitoo`: the command of janitoo-rs.
//!
//! Only the protocol exists so far; the subcommands (`run`, `broker`, `demo`, `status`, the
//! operator tools) arrive with the issues that build them. Until then this says so plainly.

use std::process::ExitCode;

const USAGE: &str = "\
janitoo: a Janitoo home-automation controller (Janitoo protocol over MQTT)

Usage: janitoo <COMMAND>

Commands (planned; not built yet):
  demo     an embedded broker, a primary, two secondaries and the tutorial server
  run      run a controller from a configuration file
  broker   run an embedded MQTT broker in the foreground

What exists today is the protocol crate (janitoo-protocol) and its tests.";

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None | Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(command @ ("demo" | "run" | "broker")) => {
            eprintln!(
                "janitoo {command}: not built yet; this version has only the protocol crate."
            );
            ExitCode::from(2)
        }
        Some(other) => {
            eprintln!("janitoo: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
