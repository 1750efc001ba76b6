//! Log lines for refused control messages, at most one per kind every [`QUIET`]: a stranger
//! repeating a forged claim or OFFLINE thousands of times a second fills the counters, not the
//! journal. Each line says how many of its kind went unlogged since the last.

use std::time::Duration;

/// The least time between two lines of one kind.
pub const QUIET: Duration = Duration::from_secs(10);

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A primary heartbeat with an epoch its sender could not have claimed.
    Forged,
    /// A claim from a controller never announced, while the primary lives.
    Unannounced,
    /// An OFFLINE of the primary that the primary refuted.
    OfflineRefuted,
}

impl RefusalKind {
    fn index(self) -> usize {
        match self {
            RefusalKind::Forged => 0,
            RefusalKind::Unannounced => 1,
            RefusalKind::OfflineRefuted => 2,
        }
    }
}

/// When each kind was last logged, and how many went unlogged since.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: [Option<Duration>; 3],
    unlogged: [u64; 3],
}

impl RefusalLog {
    /// Whether a refusal of `kind` at `now` gets a line: `Some(unlogged since the last line)`,
    /// or `None` (counted for the next line).
    pub fn admit(&mut self, kind: RefusalKind, now: Duration) -> Option<u64> {
        let at = kind.index();
        if self.last[at].is_some_and(|last| now.saturating_sub(last) < QUIET) {
            self.unlogged[at] += 1;
            return None;
        }
        self.last[at] = Some(now);
        Some(std::mem::take(&mut self.unlogged[at]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_logged_once_per_quiet_spell_and_says_how_many_went_unlogged() {
        let mut log = RefusalLog::default();
        let second = Duration::from_secs(1);
        assert_eq!(log.admit(RefusalKind::Unannounced, second), Some(0));
        for _ in 0..1_000 {
            assert_eq!(log.admit(RefusalKind::Unannounced, second * 5), None);
        }
        // Another kind has its own spell.
        assert_eq!(log.admit(RefusalKind::Forged, second * 5), Some(0));
        assert_eq!(log.admit(RefusalKind::Unannounced, second * 10), None);
        assert_eq!(
            log.admit(RefusalKind::Unannounced, second * 11),
            Some(1_001)
        );
        assert_eq!(log.admit(RefusalKind::Unannounced, second * 21), Some(0));
        assert_eq!(log.admit(RefusalKind::OfflineRefuted, second * 21), Some(0));
    }
}
