//! The `janitoo` command, built inside this package for its tests.

fn main() -> std::process::ExitCode {
    janitoo_cli::main()
}
