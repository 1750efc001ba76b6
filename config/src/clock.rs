//! The wall clock, for what must agree across machines: the stamps of the signed control plane.
//! Everything that only measures time uses tokio's monotonic clock instead.

/// Now, in ms since the Unix epoch (0 before it: a clock that wrong refuses every stamp).
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
