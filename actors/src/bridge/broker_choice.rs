//! Which broker of the list (`[broker] addresses`) the process uses, and when it moves on:
//! sans-IO, every decision taken at an explicit `now`.
//!
//! - It starts on the first broker, and stays on a broker until that broker fails: a lost
//!   connection or a failed connect moves it to the next (wrapping around), never back to a
//!   preferred one while the current one works (no flapping).
//! - A node server (a process with no network controller) that hears no primary on its broker
//!   for the election's silence limit also moves on, when the list has other brokers: on a cut
//!   bridge between two Mosquittos the primary is on the other side. On a new connection it
//!   first waits [`FIRST_HEARING`] more: a controller listens that long after a (re)connection
//!   before it may claim, so a house starting, or coming back from a broker's restart, has no
//!   primary for that long. A network controller never moves for silence: it claims instead,
//!   which is the failover.

use std::time::Duration;

use tokio::time::Instant;

/// How much longer a node server waits for a primary on a new connection, before the silence
/// limit counts: the election's rejoin allowance.
pub const FIRST_HEARING: Duration = Duration::from_secs(10);

/// The choice of broker.
#[derive(Debug, Clone)]
pub struct BrokerChoice {
    count: usize,
    position: usize,
    move_on_silence: Option<Duration>,
    /// Since when connected to the current broker (None while not connected).
    connected_at: Option<Instant>,
    /// The last primary heartbeat heard on the current connection.
    primary_heard: Option<Instant>,
    /// A move for silence is under way: the clean disconnect is queued.
    moving: bool,
}

impl BrokerChoice {
    /// A choice among `count` brokers (one at least); `move_on_silence`: the silence limit
    /// after which a node server moves on (None for a network controller).
    pub fn new(count: usize, move_on_silence: Option<Duration>) -> Self {
        BrokerChoice {
            count: count.max(1),
            position: 0,
            move_on_silence,
            connected_at: None,
            primary_heard: None,
            moving: false,
        }
    }

    /// The position in the list of the broker in use (0 for the first).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Connected to the current broker at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
        self.primary_heard = None;
        self.moving = false;
    }

    /// A primary heartbeat was heard at `now`.
    pub fn primary_heard(&mut self, now: Instant) {
        self.primary_heard = Some(now);
    }

    /// The current broker failed (lost, or could not be reached): the position of the next
    /// broker to try, when the list has another.
    pub fn failed(&mut self) -> Option<usize> {
        self.connected_at = None;
        self.primary_heard = None;
        self.moving = false;
        self.advance()
    }

    /// When the current broker will have been silent too long (no primary heard since the
    /// connection, or since the last heartbeat), if this process moves for silence and has
    /// somewhere to go.
    pub fn silence_deadline(&self) -> Option<Instant> {
        let limit = self.move_on_silence.filter(|_| self.count > 1)?;
        if self.moving {
            return None;
        }
        let connected = self.connected_at?;
        Some(match self.primary_heard {
            Some(heard) => heard.max(connected) + limit,
            None => connected + FIRST_HEARING + limit,
        })
    }

    /// Whether the process should leave its broker for silence at `now`; when it should, the
    /// move is under way until [`BrokerChoice::moved`] (or a failure).
    pub fn silent_at(&mut self, now: Instant) -> bool {
        let silent = self
            .silence_deadline()
            .is_some_and(|deadline| now >= deadline);
        if silent {
            self.moving = true;
        }
        silent
    }

    /// Whether a move for silence is under way.
    pub fn moving(&self) -> bool {
        self.moving
    }

    /// The clean disconnect of a move for silence is done: the position of the next broker.
    pub fn moved(&mut self) -> Option<usize> {
        self.failed()
    }

    fn advance(&mut self) -> Option<usize> {
        if self.count < 2 {
            return None;
        }
        self.position = (self.position + 1) % self.count;
        Some(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(3);

    #[tokio::test(start_paused = true)]
    async fn a_failure_moves_to_the_next_broker_and_a_working_one_is_kept() {
        let mut choice = BrokerChoice::new(3, None);
        assert_eq!(choice.position(), 0);
        assert_eq!(choice.failed(), Some(1));
        choice.connected(Instant::now());
        // No flapping back: connected to the second, it stays there, however long.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(choice.position(), 1);
        assert_eq!(
            choice.silence_deadline(),
            None,
            "a controller never moves for silence"
        );
        assert!(!choice.silent_at(Instant::now()));
        assert_eq!(choice.failed(), Some(2));
        assert_eq!(choice.failed(), Some(0), "wraps around");
    }

    #[test]
    fn a_single_broker_is_never_left() {
        let mut choice = BrokerChoice::new(1, Some(LIMIT));
        choice.connected(Instant::now());
        assert_eq!(choice.failed(), None);
        assert_eq!(choice.position(), 0);
        choice.connected(Instant::now());
        assert_eq!(choice.silence_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_server_leaves_a_broker_where_no_primary_is_heard() {
        let mut choice = BrokerChoice::new(2, Some(LIMIT));
        let start = Instant::now();
        assert_eq!(choice.silence_deadline(), None, "not connected yet");
        choice.connected(start);
        assert_eq!(
            choice.silence_deadline(),
            Some(start + FIRST_HEARING + LIMIT)
        );
        // Heard at 2 s: the deadline moves to 5 s (the first hearing is over).
        tokio::time::advance(Duration::from_secs(2)).await;
        choice.primary_heard(Instant::now());
        assert_eq!(
            choice.silence_deadline(),
            Some(start + LIMIT + Duration::from_secs(2))
        );
        tokio::time::advance(Duration::from_millis(2_999)).await;
        assert!(!choice.silent_at(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(choice.silent_at(Instant::now()));
        assert!(choice.moving());
        assert_eq!(choice.silence_deadline(), None, "one move at a time");
        assert!(!choice.silent_at(Instant::now() + LIMIT));
        assert_eq!(choice.moved(), Some(1));
        assert!(!choice.moving());
        // On the new broker, the first hearing and the silence limit count from the connection.
        let there = Instant::now();
        choice.connected(there);
        assert_eq!(
            choice.silence_deadline(),
            Some(there + FIRST_HEARING + LIMIT)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_during_a_move_for_silence_ends_it() {
        let mut choice = BrokerChoice::new(3, Some(LIMIT));
        choice.connected(Instant::now());
        tokio::time::advance(FIRST_HEARING + LIMIT).await;
        assert!(choice.silent_at(Instant::now()));
        assert_eq!(choice.failed(), Some(1));
        assert!(!choice.moving());
        assert_eq!(choice.silence_deadline(), None, "not connected");
    }
}
