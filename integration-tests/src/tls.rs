//! Certificates made for a test (a CA, a broker certificate for `localhost` and 127.0.0.1,
//! a client certificate), and Mosquitto with a TLS listener beside a plain one.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

use crate::process::{mosquitto_path, wait_for_port};

/// The PEM files of a test PKI, in a temporary folder.
pub struct TestPki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The broker's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// A client certificate and key, signed by the CA.
    pub client: (PathBuf, PathBuf),
    /// Another CA, that signed nothing here.
    pub other_ca: PathBuf,
    /// The folder.
    pub dir: tempfile::TempDir,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn signed(names: &[&str], ca: &(Certificate, KeyPair)) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "janitoo test");
    (params.signed_by(&key, &ca.0, &ca.1).unwrap(), key)
}

impl TestPki {
    /// Makes them.
    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let authority = ca("janitoo test CA");
        let server = signed(&["localhost", "127.0.0.1"], &authority);
        let client = signed(&["janitoo-controller"], &authority);
        let other = ca("another CA");
        TestPki {
            ca: write("ca.pem", authority.0.pem()),
            server: (
                write("server.pem", server.0.pem()),
                write("server.key", server.1.serialize_pem()),
            ),
            client: (
                write("client.pem", client.0.pem()),
                write("client.key", client.1.serialize_pem()),
            ),
            other_ca: write("other-ca.pem", other.0.pem()),
            dir,
        }
    }
}

/// Mosquitto with a plain listener (for test clients) and a TLS one that requires a client
/// certificate of the test CA; killed when dropped.
pub struct TlsMosquitto {
    /// The plain port.
    pub plain_port: u16,
    /// The TLS port.
    pub tls_port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TlsMosquitto {
    /// Starts it with `pki`'s certificates; `None` when Mosquitto is not installed.
    pub fn start(pki: &TestPki) -> Option<TlsMosquitto> {
        let mosquitto = mosquitto_path()?;
        let free = || janitoo_broker::free_local_port(Ipv4Addr::LOCALHOST.into()).unwrap();
        let (plain_port, tls_port) = (free(), free());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mosquitto.conf");
        let path = |p: &Path| p.display().to_string();
        std::fs::write(
            &config,
            format!(
                "per_listener_settings false\nallow_anonymous true\nuser root\n\
                 listener {plain_port} 127.0.0.1\n\
                 listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
                 require_certificate true\n",
                path(&pki.ca),
                path(&pki.server.0),
                path(&pki.server.1)
            ),
        )
        .unwrap();
        let child = Command::new(mosquitto)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = wait_for_port(plain_port, Duration::from_secs(10))
            && wait_for_port(tls_port, Duration::from_secs(10));
        assert!(up, "Mosquitto with TLS did not listen");
        Some(TlsMosquitto {
            plain_port,
            tls_port,
            child,
            _dir: dir,
        })
    }
}

impl Drop for TlsMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
