//! `janitoo`: the command of janitoo-rs (see the `janitoo_cli` library).

fn main() -> std::process::ExitCode {
    janitoo_cli::main()
}
