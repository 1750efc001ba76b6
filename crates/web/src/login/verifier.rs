//! Password checks, bounded: argon2 wants its memory cost in RAM for each check (12 MiB with
//! the hashes `janitoo web-user` writes), so at most [`MAX_CHECKING`] run at once, each in a
//! memory area kept for the next one (no allocation per login). A login for a user who does
//! not exist is checked against a dummy hash of the same cost, so that the answer's timing does
//! not tell which names exist.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// Password checks running at once, at most (a Pi has 1 GiB or less, and 4 slow cores).
pub const MAX_CHECKING: usize = 2;
/// How long a login waits for a check to be free before it is answered 503.
pub const CHECK_WAIT: Duration = Duration::from_secs(2);
/// The largest memory cost a users file's hash may ask, KiB.
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// The cost of the hashes `janitoo web-user` writes: argon2id, 12 MiB, 3 passes, 1 lane (one
/// of OWASP's equivalent recommendations, the one that needs least memory at once).
pub fn pi_params() -> Params {
    Params::new(12 * 1024, 3, 1, None).expect("valid argon2 parameters")
}

/// The PHC string of `password` hashed with [`pi_params`] and a random salt.
pub fn hash(password: &str) -> String {
    let random: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&random).expect("16 bytes make a salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, pi_params())
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
}

/// Why a hash cannot be used.
pub fn unusable(phc: &str) -> Option<String> {
    let Ok(hash) = PasswordHash::new(phc) else {
        return Some("not an argon2 hash in the PHC format".into());
    };
    let params = match Params::try_from(&hash) {
        Ok(params) => params,
        Err(err) => return Some(format!("its parameters: {err}")),
    };
    if Algorithm::try_from(hash.algorithm).is_err() {
        return Some(format!("{} is no argon2 variant", hash.algorithm));
    }
    if params.m_cost() > MAX_MEMORY_KIB {
        return Some(format!(
            "it asks {} MiB per check, more than the {} MiB allowed",
            params.m_cost() / 1024,
            MAX_MEMORY_KIB / 1024
        ));
    }
    None
}

/// The checks were all busy for [`CHECK_WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturated;

/// Checks passwords, [`MAX_CHECKING`] at a time.
pub struct Verifier {
    permits: Semaphore,
    areas: Mutex<Vec<Vec<Block>>>,
    dummy: String,
}

impl Verifier {
    /// A verifier whose dummy hash has the cost of `like` (a user's hash, so that unknown
    /// names take as long), or of [`pi_params`].
    pub fn new(like: Option<&str>) -> Verifier {
        let params = like
            .and_then(|phc| PasswordHash::new(phc).ok())
            .and_then(|hash| Params::try_from(&hash).ok())
            .unwrap_or_else(pi_params);
        let random: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&random).expect("16 bytes make a salt");
        let password: [u8; 16] = rand::random();
        let dummy = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(&password, &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default();
        Verifier {
            permits: Semaphore::new(MAX_CHECKING),
            areas: Mutex::new(Vec::new()),
            dummy,
        }
    }

    /// Whether `password` matches `phc` (`None`: a user who does not exist, checked against
    /// the dummy and refused), once a check is free; off the async threads.
    pub async fn verify(
        self: &Arc<Self>,
        phc: Option<String>,
        password: String,
    ) -> Result<bool, Saturated> {
        let permit = tokio::time::timeout(CHECK_WAIT, self.permits.acquire())
            .await
            .map_err(|_| Saturated)?
            .map_err(|_| Saturated)?;
        let verifier = self.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let known = phc.is_some();
            let phc = phc.unwrap_or_else(|| verifier.dummy.clone());
            verifier.check(&phc, password.as_bytes()) && known
        })
        .await
        .unwrap_or(false);
        drop(permit);
        Ok(checked)
    }

    /// Whether `password` hashes to `phc`, computed in a kept memory area.
    fn check(&self, phc: &str, password: &[u8]) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) =
            (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
        else {
            return false;
        };
        let version = hash
            .version
            .map_or(Ok(Version::V0x13), Version::try_from)
            .unwrap_or(Version::V0x13);
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return false;
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let mut area = self.take_area();
        area.resize(params.block_count(), Block::default());
        let computed = Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, &mut out, &mut area[..])
            .is_ok();
        self.areas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(area);
        computed && Output::new(&out).is_ok_and(|out| out == expected)
    }

    fn take_area(&self) -> Vec<Block> {
        self.areas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// The memory areas kept (at most [`MAX_CHECKING`]).
    pub fn areas(&self) -> usize {
        self.areas.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_checks_its_password_only() {
        let phc = hash("correct horse");
        assert_eq!(unusable(&phc), None);
        assert!(phc.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{phc}");
        let verifier = Arc::new(Verifier::new(Some(&phc)));
        assert_eq!(
            verifier
                .verify(Some(phc.clone()), "correct horse".into())
                .await,
            Ok(true)
        );
        assert_eq!(
            verifier.verify(Some(phc.clone()), "wrong".into()).await,
            Ok(false)
        );
        assert_eq!(
            verifier.verify(None, "correct horse".into()).await,
            Ok(false)
        );
        assert_eq!(
            verifier.verify(Some("garbage".into()), "x".into()).await,
            Ok(false)
        );
    }

    /// The argon2 crate's own hashes (other costs, argon2i) check the same.
    #[tokio::test]
    async fn hashes_written_elsewhere_check_too() {
        let salt = SaltString::encode_b64(b"sixteen byte sal").unwrap();
        let verifier = Arc::new(Verifier::new(None));
        for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(8 * 1024, 2, 1, Some(24)).unwrap();
            let phc = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"secret", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                verifier.verify(Some(phc.clone()), "secret".into()).await,
                Ok(true),
                "{phc}"
            );
            assert_eq!(verifier.verify(Some(phc), "Secret".into()).await, Ok(false));
        }
    }

    /// Issue 21's finding 1: each login ran argon2 at once, with no bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_two_checks_at_once_and_their_memory_is_kept() {
        let phc = hash("pw");
        let verifier = Arc::new(Verifier::new(Some(&phc)));
        let checks: Vec<_> = (0..12)
            .map(|_| {
                let verifier = verifier.clone();
                let phc = phc.clone();
                tokio::spawn(async move { verifier.verify(Some(phc), "pw".into()).await })
            })
            .collect();
        let mut saturated = 0;
        for check in checks {
            match check.await.unwrap() {
                Ok(matched) => assert!(matched),
                Err(Saturated) => saturated += 1,
            }
        }
        assert!(
            verifier.areas() <= MAX_CHECKING,
            "{} areas",
            verifier.areas()
        );
        assert!(verifier.areas() >= 1);
        eprintln!("{saturated} of 12 found every check busy for {CHECK_WAIT:?}");
    }

    #[test]
    fn a_hash_too_costly_for_a_pi_is_named() {
        let params = Params::new(MAX_MEMORY_KIB * 2, 1, 1, None).unwrap();
        let phc = format!(
            "$argon2id$v=19$m={},t={},p={}$c2l4dGVlbiBieXRlIHNhbA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        );
        let why = unusable(&phc).unwrap();
        assert!(why.contains("128 MiB"), "{why}");
        assert!(unusable("plaintext").is_some());
    }
}
