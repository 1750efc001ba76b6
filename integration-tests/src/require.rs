//! Tests that need an external program (Mosquitto, Chromium, `ip netns`) run when it is there;
//! with its `JANITOO_TEST_*` variable set they must run, and a missing program fails them.
//! Every such variable takes the same values: unset, empty, `0`, `false`, `no` or `off` leave
//! the test optional; anything else makes it mandatory.

/// Whether the variable `name` makes its tests mandatory.
pub fn required(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| {
        !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        )
    })
}

/// Decides whether a test runs: `Some(())` when `available`; else, when `variable` requires
/// it, a panic naming what is missing; else `None`, after printing `SKIPPED: <why>`.
pub fn runs(variable: &str, available: bool, missing: &str) -> Option<()> {
    if available {
        return Some(());
    }
    assert!(!required(variable), "{variable} is set but {missing}");
    eprintln!("SKIPPED: {missing} (set {variable}=1 to require this test)");
    None
}
