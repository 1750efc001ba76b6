//! Logins for the web manager: users with argon2 password hashes, a session in an HttpOnly,
//! SameSite=Strict cookie, two roles (an `operator` sets values, a `viewer` browses), failed
//! logins slowed down per client address and counted.
//!
//! The users file holds one `name:role:hash` line per user (`#` comments), the hash in the
//! PHC format argon2 writes (`janitoo web-user NAME` prints a line).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::WebError;

/// The session cookie's name.
pub const COOKIE: &str = "janitoo_session";
/// How long a session lasts without a new login.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest goes first).
const MAX_SESSIONS: usize = 1_024;
/// Client addresses whose failures are remembered at most.
const MAX_FAILING: usize = 4_096;

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
            if name.is_empty() || PasswordHash::new(hash).is_err() {
                return Err(
                    "expected a name and an argon2 hash (`janitoo web-user NAME` makes the line)"
                        .into(),
                );
            }
            Ok((name.to_string(), (role, hash.to_string())))
        })?;
        Ok(Users(users.into_iter().collect()))
    }
}

/// The users file line of `name` with `role` and `password`.
pub fn user_line(name: &str, role: Role, password: &str) -> String {
    let random: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&random).expect("16 bytes make a salt");
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default();
    format!("{name}:{}:{hash}", role.as_str())
}

struct Session {
    user: String,
    role: Role,
    expires: Instant,
}

/// The logins of a running web manager: its users, open sessions, recent failures.
pub struct Logins {
    users: Users,
    sessions: Mutex<HashMap<String, Session>>,
    failing: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    failures: Counter<u64, AtomicU64>,
    /// The registry of the logins' metrics, which `/metrics` shows after the process's.
    registry: Registry,
}

impl Logins {
    /// Logins of `users`.
    pub fn new(users: Users) -> Logins {
        let failures = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "janitoo_web_login_failures",
            "Failed logins to the web manager",
            failures.clone(),
        );
        Logins {
            users,
            sessions: Mutex::new(HashMap::new()),
            failing: Mutex::new(HashMap::new()),
            failures,
            registry,
        }
    }

    /// Failed logins so far.
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }

    /// Their metrics in the OpenMetrics text format (without the exposition's end).
    pub fn encode_metrics(&self, out: &mut String) {
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }

    /// How long a login from `client` waits before it is answered: nothing at first, then a
    /// second more per recent failure (at most 5 s).
    pub fn delay_for(&self, client: IpAddr) -> Duration {
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        match failing.get(&client) {
            Some((count, at)) if at.elapsed() < Duration::from_secs(600) => {
                Duration::from_secs(u64::from((*count).min(5)))
            }
            _ => Duration::ZERO,
        }
    }

    /// Checks a login; on success, a new session's token.
    pub fn log_in(&self, client: IpAddr, name: &str, password: &str) -> Option<String> {
        let role = self.users.0.get(name).and_then(|(role, hash)| {
            let hash = PasswordHash::new(hash).ok()?;
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .ok()
                .map(|()| *role)
        });
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        let Some(role) = role else {
            self.failures.inc();
            if failing.len() >= MAX_FAILING {
                failing.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(600));
            }
            if failing.len() < MAX_FAILING || failing.contains_key(&client) {
                let entry = failing.entry(client).or_insert((0, Instant::now()));
                *entry = (entry.0.saturating_add(1), Instant::now());
            }
            return None;
        };
        failing.remove(&client);
        drop(failing);
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
            },
        );
        Some(token)
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

    /// Closes the session of `token` (the session cookie's).
    pub fn log_out(&self, token: Option<&str>) {
        if let Some(token) = token {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.remove(token);
        }
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

    #[test]
    fn a_good_password_opens_a_session_with_the_users_role() {
        let logins = Logins::new(users());
        let token = logins.log_in(CLIENT, "alice", "alice's secret").unwrap();
        assert_eq!(
            logins.session(Some(&token)),
            Some(("alice".to_owned(), Role::Operator))
        );
        let bob = logins.log_in(CLIENT, "bob", "bob's secret").unwrap();
        assert_eq!(logins.session(Some(&bob)).map(|s| s.1), Some(Role::Viewer));
        logins.log_out(Some(&token));
        assert_eq!(logins.session(Some(&token)), None);
        assert_eq!(logins.session(Some("forged")), None);
        assert_eq!(logins.session(None), None);
    }

    #[test]
    fn failures_are_counted_and_slow_the_next_attempts_down() {
        let logins = Logins::new(users());
        assert_eq!(logins.delay_for(CLIENT), Duration::ZERO);
        assert!(logins.log_in(CLIENT, "alice", "guess").is_none());
        assert!(logins.log_in(CLIENT, "nobody", "guess").is_none());
        assert_eq!(logins.failures(), 2);
        assert_eq!(logins.delay_for(CLIENT), Duration::from_secs(2));
        for _ in 0..10 {
            let _ = logins.log_in(CLIENT, "alice", "guess");
        }
        assert_eq!(logins.delay_for(CLIENT), Duration::from_secs(5));
        let elsewhere: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(logins.delay_for(elsewhere), Duration::ZERO);
        assert!(logins.log_in(CLIENT, "alice", "alice's secret").is_some());
        assert_eq!(
            logins.delay_for(CLIENT),
            Duration::ZERO,
            "a success forgives"
        );
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
    }
}
