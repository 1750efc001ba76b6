//! Logins for the web manager: users with argon2 password hashes, a session in an HttpOnly,
//! SameSite=Strict cookie, two roles (an `operator` sets values, a `viewer` browses).
//!
//! What a guesser meets: one attempt at a time per address, a delay that grows with its recent
//! failures, a budget of failures for all addresses together ([`throttle`]); at most two
//! password checks at once, in memory kept for them, and the same work for a name that does
//! not exist ([`verifier`]). Each refusal is counted.
//!
//! The users file holds one `name:role:hash` line per user (`#` comments), the hash in the
//! PHC format argon2 writes (`janitoo web-user NAME` prints a line).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::WebError;

pub mod throttle;
pub mod verifier;

use throttle::{Ended, Throttle, Turn};
use verifier::{Saturated, Verifier};

/// The session cookie's name.
pub const COOKIE: &str = "janitoo_session";
/// How long a session lasts without a new login.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest goes first).
const MAX_SESSIONS: usize = 1_024;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Browse and set values.
    Operator,
    /// Browse only.
    Viewer,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        match text {
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// Its name in the users file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// The users of a web manager.
#[derive(Debug, Clone, Default)]
pub struct Users(HashMap<String, (Role, String)>);

impl Users {
    /// Reads a users file.
    pub fn load(file: &Path) -> Result<Users, WebError> {
        let users = janitoo_config::read_lines(file, 3, "user", |fields| {
            let [name, role, hash] = fields else {
                return Err("expected name:role:hash".into());
            };
            let role = Role::parse(role).ok_or("the role is operator or viewer")?;
            if name.is_empty() {
                return Err("expected a name".into());
            }
            if let Some(why) = verifier::unusable(hash) {
                return Err(format!(
                    "expected an argon2 hash (`janitoo web-user NAME` makes the line): {why}"
                ));
            }
            Ok((name.to_string(), (role, hash.to_string())))
        })?;
        Ok(Users(users.into_iter().collect()))
    }
}

/// The users file line of `name` with `role` and `password`.
pub fn user_line(name: &str, role: Role, password: &str) -> String {
    format!("{name}:{}:{}", role.as_str(), verifier::hash(password))
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Wrong user or password.
    Wrong,
    /// A login from the same address is being checked (429).
    Busy,
    /// Too many failures from everywhere lately (429, with when to try again).
    Spent {
        /// When.
        retry_after: Duration,
    },
    /// Every password check was busy (503).
    Saturated,
}

struct Session {
    user: String,
    role: Role,
    expires: Instant,
    /// Dropped with the session: its pages' WebSockets close.
    open: watch::Sender<()>,
}

/// The logins of a running web manager: its users, open sessions, recent failures.
pub struct Logins {
    users: Users,
    sessions: Mutex<HashMap<String, Session>>,
    throttle: Mutex<Throttle>,
    verifier: Arc<Verifier>,
    failures: Counter<u64, AtomicU64>,
    refused: Counter<u64, AtomicU64>,
    /// The registry of the logins' metrics, which `/metrics` shows after the process's.
    registry: Registry,
}

impl Logins {
    /// Logins of `users`.
    pub fn new(users: Users) -> Logins {
        let failures = Counter::default();
        let refused = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "janitoo_web_login_failures",
            "Failed logins to the web manager",
            failures.clone(),
        );
        registry.register(
            "janitoo_web_login_refused",
            "Logins to the web manager refused unchecked: another from the same address in \
             progress, the failure budget spent, or every password check busy",
            refused.clone(),
        );
        let verifier = Arc::new(Verifier::new(
            users.0.values().next().map(|(_, hash)| hash.as_str()),
        ));
        Logins {
            users,
            sessions: Mutex::new(HashMap::new()),
            throttle: Mutex::new(Throttle::new(Instant::now())),
            verifier,
            failures,
            refused,
            registry,
        }
    }

    /// Failed logins so far.
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }

    /// Logins refused unchecked so far.
    pub fn refused(&self) -> u64 {
        self.refused.get()
    }

    /// Their metrics in the OpenMetrics text format (without the exposition's end).
    pub fn encode_metrics(&self, out: &mut String) {
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }

    /// Checks a login from `client`, after the delay its address's failures earn; on success,
    /// a new session's token.
    pub async fn log_in(
        self: &Arc<Self>,
        client: IpAddr,
        name: &str,
        password: String,
    ) -> Result<String, Refused> {
        let turn = self.throttle().begin(client, Instant::now());
        let after = match turn {
            Turn::Go { after } => after,
            Turn::Busy => return Err(self.refuse(Refused::Busy)),
            Turn::Spent { retry_after } => return Err(self.refuse(Refused::Spent { retry_after })),
        };
        let mut attempt = Attempt {
            logins: self,
            client,
            ended: Ended::GaveUp,
        };
        tokio::time::sleep(after).await;
        let user = self.users.0.get(name).cloned();
        let matched = self
            .verifier
            .verify(user.as_ref().map(|(_, hash)| hash.clone()), password)
            .await;
        match (matched, user) {
            (Err(Saturated), _) => Err(self.refuse(Refused::Saturated)),
            (Ok(true), Some((role, _))) => {
                attempt.ended = Ended::LoggedIn;
                Ok(self.open_session(name, role))
            }
            (Ok(_), _) => {
                self.failures.inc();
                attempt.ended = Ended::Failed;
                Err(Refused::Wrong)
            }
        }
    }

    fn refuse(&self, why: Refused) -> Refused {
        self.refused.inc();
        why
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_session(&self, name: &str, role: Role) -> String {
        let token = token();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, session| session.expires > Instant::now());
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.expires)
                .map(|(token, _)| token.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            token.clone(),
            Session {
                user: name.to_owned(),
                role,
                expires: Instant::now() + SESSION_LIFETIME,
                open: watch::channel(()).0,
            },
        );
        token
    }

    /// The user and role of the session of `token` (the session cookie's), if open.
    pub fn session(&self, token: Option<&str>) -> Option<(String, Role)> {
        let token = token?;
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(token)
            .filter(|session| session.expires > Instant::now())
            .map(|session| (session.user.clone(), session.role))
    }

    /// What tells the end of the session of `token` (its `changed()` fails then), if open.
    pub fn watch(&self, token: Option<&str>) -> Option<watch::Receiver<()>> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(token?)
            .filter(|session| session.expires > Instant::now())
            .map(|session| session.open.subscribe())
    }

    /// Closes the session of `token` (the session cookie's), and with it its pages' sockets.
    pub fn log_out(&self, token: Option<&str>) {
        if let Some(token) = token {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.remove(token);
        }
    }
}

/// A login being checked: its address is busy until it ends, however it ends (the client may
/// go away during the delay).
struct Attempt<'a> {
    logins: &'a Logins,
    client: IpAddr,
    ended: Ended,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.logins
            .throttle()
            .end(self.client, self.ended, Instant::now());
    }
}

/// 32 random bytes, in hex.
fn token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        let dir = tempfile_dir();
        let file = dir.join("users");
        std::fs::write(
            &file,
            format!(
                "# the web manager's users\n{}\n{}\n",
                user_line("alice", Role::Operator, "alice's secret"),
                user_line("bob", Role::Viewer, "bob's secret")
            ),
        )
        .unwrap();
        Users::load(&file).unwrap()
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("janitoo-login-{}", token()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 9));

    #[tokio::test(start_paused = true)]
    async fn a_good_password_opens_a_session_with_the_users_role() {
        let logins = Arc::new(Logins::new(users()));
        let token = logins
            .log_in(CLIENT, "alice", "alice's secret".into())
            .await
            .unwrap();
        assert_eq!(
            logins.session(Some(&token)),
            Some(("alice".to_owned(), Role::Operator))
        );
        let bob = logins
            .log_in(CLIENT, "bob", "bob's secret".into())
            .await
            .unwrap();
        assert_eq!(logins.session(Some(&bob)).map(|s| s.1), Some(Role::Viewer));
        logins.log_out(Some(&token));
        assert_eq!(logins.session(Some(&token)), None);
        assert_eq!(logins.session(Some("forged")), None);
        assert_eq!(logins.session(None), None);
        assert_eq!((logins.failures(), logins.refused()), (0, 0));
    }

    /// A failure is counted, and each one adds a second before the address's next check.
    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_and_slow_the_next_attempts_down() {
        let logins = Arc::new(Logins::new(users()));
        for (attempt, waited) in [(0, 0), (1, 1), (2, 2)] {
            let start = tokio::time::Instant::now();
            let name = if attempt == 1 { "nobody" } else { "alice" };
            assert_eq!(
                logins.log_in(CLIENT, name, "guess".into()).await,
                Err(Refused::Wrong)
            );
            assert_eq!(start.elapsed().as_secs(), waited, "attempt {attempt}");
        }
        assert_eq!(logins.failures(), 3);
        let elsewhere: IpAddr = [10, 0, 0, 1].into();
        let start = tokio::time::Instant::now();
        assert!(logins
            .log_in(elsewhere, "alice", "alice's secret".into())
            .await
            .is_ok());
        assert_eq!(
            start.elapsed().as_secs(),
            0,
            "another address waits for nothing"
        );
    }

    /// Issue 21's finding 7: an open WebSocket kept setting values after its session logged
    /// out. The session's watch ends with it.
    #[tokio::test(start_paused = true)]
    async fn a_sessions_watch_ends_when_it_logs_out() {
        let logins = Arc::new(Logins::new(users()));
        let token = logins
            .log_in(CLIENT, "alice", "alice's secret".into())
            .await
            .unwrap();
        let mut open = logins.watch(Some(&token)).unwrap();
        assert!(logins.watch(Some("forged")).is_none());
        logins.log_out(Some(&token));
        assert!(
            open.changed().await.is_err(),
            "the watch outlived the session"
        );
        assert!(logins.watch(Some(&token)).is_none());
    }

    #[test]
    fn a_bad_users_file_is_named_with_its_line() {
        let dir = tempfile_dir();
        let file = dir.join("users");
        std::fs::write(&file, "alice:admin:$argon2id$x\n").unwrap();
        let err = Users::load(&file).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("operator or viewer"),
            "{err}"
        );
        std::fs::write(&file, "alice:operator:plaintext\n").unwrap();
        let err = Users::load(&file).unwrap_err().to_string();
        assert!(err.contains("argon2 hash"), "{err}");
        std::fs::write(
            &file,
            "alice:operator:$argon2id$v=19$m=262144,t=1,p=1$c2l4dGVlbiBieXRlIHNhbA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        )
        .unwrap();
        let err = Users::load(&file).unwrap_err().to_string();
        assert!(err.contains("256 MiB per check"), "{err}");
    }
}
