//! The NATS cluster of `deploy/nats/` on one machine (the demo's `--brokers 3`, the tests): the
//! deploy files themselves, with only their addresses, ports and paths changed for loopback, and
//! as much of their security as the caller keeps.

use std::path::{Path, PathBuf};

/// Each Pi's file, by server name.
pub const PI_FILES: [(&str, &str); 3] = [
    ("pi1", include_str!("../../../deploy/nats/pi1.conf")),
    ("pi2", include_str!("../../../deploy/nats/pi2.conf")),
    ("pi3", include_str!("../../../deploy/nats/pi3.conf")),
];
/// What the servers share.
pub const SHARED: &str = include_str!("../../../deploy/nats/janitoo.conf");
/// The accounts and their permissions.
pub const ACCOUNTS: &str = include_str!("../../../deploy/nats/accounts.conf");
/// The passwords file the README has the user write.
pub const PASSWORDS_EXAMPLE: &str = include_str!("../../../deploy/nats/passwords.conf.example");

/// Where Debian installs `nats-server`, or the first on the PATH.
pub fn nats_server_path() -> Option<PathBuf> {
    let installed = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    installed.chain(on_path).find(|path| path.is_file())
}

/// The loopback ports of each server: MQTT, the cluster's routes, NATS clients.
#[derive(Debug, Clone)]
pub struct LoopbackPorts {
    /// MQTT, by server.
    pub mqtt: [u16; 3],
    /// The cluster's routes, by server.
    pub routes: [u16; 3],
    /// NATS clients, by server.
    pub clients: [u16; 3],
}

/// The certificates the deploy files name (`/etc/nats/janitoo/...`).
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The house's CA.
    pub ca: PathBuf,
    /// The servers' certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// How much of the deployed security is kept.
#[derive(Debug, Clone)]
pub enum Security {
    /// None: routes and MQTT in plain text, no accounts (the demo, tests of failover).
    Plain,
    /// TLS on the routes only.
    Routes(Certificates),
    /// As deployed: TLS everywhere and the accounts, each password `password(account)`.
    AsDeployed(Certificates, fn(&str) -> String),
}

/// Takes the `tls { ... }` block inside the block opened by `block` out of `text`.
fn without_tls_in(text: &str, block: &str) -> String {
    let Some(opened) = text.find(block) else {
        return text.to_owned();
    };
    let Some(start) = text[opened..].find("  tls {").map(|at| opened + at) else {
        return text.to_owned();
    };
    let Some(end) = text[start..]
        .find("\n  }\n")
        .map(|at| start + at + "\n  }\n".len())
    else {
        return text.to_owned();
    };
    format!("{}{}", &text[..start], &text[end..])
}

/// The account of a passwords file's variable (`SERVER_TUTORIAL_PASSWORD`: `server-tutorial`).
fn account_of(variable: &str) -> String {
    variable
        .trim_end_matches("_PASSWORD")
        .to_ascii_lowercase()
        .replace("home_assistant", "homeassistant")
        .replace('_', "-")
}

/// Writes the three servers' files into `dir` (a folder each, with its JetStream store), on
/// `ports`, keeping `security`; the path of each server's main file.
pub fn write_loopback_cluster(
    dir: &Path,
    ports: &LoopbackPorts,
    security: &Security,
) -> std::io::Result<[PathBuf; 3]> {
    let certificates = match security {
        Security::Plain => None,
        Security::Routes(certificates) | Security::AsDeployed(certificates, _) => {
            Some(certificates)
        }
    };
    let paths = |text: &str| match certificates {
        Some(certificates) => text
            .replace(
                "/etc/nats/janitoo/ca.pem",
                &certificates.ca.display().to_string(),
            )
            .replace(
                "/etc/nats/janitoo/server.pem",
                &certificates.cert.display().to_string(),
            )
            .replace(
                "/etc/nats/janitoo/server.key",
                &certificates.key.display().to_string(),
            ),
        None => text.to_owned(),
    };
    let mut shared = paths(SHARED);
    let mut passwords = None;
    match security {
        Security::AsDeployed(_, password) => {
            passwords = Some(
                PASSWORDS_EXAMPLE
                    .lines()
                    .filter_map(|line| line.split_once(": \"$2y$"))
                    .map(|(variable, _)| {
                        format!("{variable}: \"{}\"\n", password(&account_of(variable)))
                    })
                    .collect::<String>(),
            );
        }
        Security::Plain | Security::Routes(_) => {
            shared = without_tls_in(&shared, "mqtt {").replace("include accounts.conf\n", "");
        }
    }
    let mut written = Vec::new();
    for (at, (name, file)) in PI_FILES.iter().enumerate() {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder)?;
        let store = folder.join("jetstream");
        let own_shared = shared
            .replace("/var/lib/nats/janitoo", &store.display().to_string())
            .replace("0.0.0.0:8883", &format!("127.0.0.1:{}", ports.mqtt[at]));
        std::fs::write(folder.join("janitoo.conf"), own_shared)?;
        std::fs::write(folder.join("accounts.conf"), ACCOUNTS)?;
        if let Some(passwords) = &passwords {
            std::fs::write(folder.join("passwords.conf"), passwords)?;
        }
        let mut text = paths(file)
            .replace(
                "127.0.0.1:4222",
                &format!("127.0.0.1:{}", ports.clients[at]),
            )
            .replace("0.0.0.0:6222", &format!("127.0.0.1:{}", ports.routes[at]));
        if certificates.is_none() {
            text = without_tls_in(&text, "cluster {");
        }
        for (other, (other_name, _)) in PI_FILES.iter().enumerate() {
            text = text.replace(
                &format!("{other_name}.home.lan:6222"),
                &format!("127.0.0.1:{}", ports.routes[other]),
            );
        }
        let conf = folder.join(format!("{name}.conf"));
        std::fs::write(&conf, text)?;
        written.push(conf);
    }
    Ok([written[0].clone(), written[1].clone(), written[2].clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_files_keep_the_deploy_files_but_their_addresses() {
        let dir = std::env::temp_dir().join(format!("janitoo-nats-{}", std::process::id()));
        let ports = LoopbackPorts {
            mqtt: [1001, 1002, 1003],
            routes: [2001, 2002, 2003],
            clients: [3001, 3002, 3003],
        };
        let files = write_loopback_cluster(&dir, &ports, &Security::Plain).unwrap();
        let pi2 = std::fs::read_to_string(&files[1]).unwrap();
        assert!(pi2.contains("server_name: pi2"), "{pi2}");
        assert!(pi2.contains("nats://127.0.0.1:2001") && pi2.contains("nats://127.0.0.1:2003"));
        assert!(
            pi2.contains("listen: 127.0.0.1:2002") && !pi2.contains("tls {"),
            "{pi2}"
        );
        let shared = std::fs::read_to_string(dir.join("pi2/janitoo.conf")).unwrap();
        assert!(shared.contains("listen: 127.0.0.1:1002"), "{shared}");
        assert!(shared.contains("stream_replicas: 3"));
        assert!(!shared.contains("tls {") && !shared.contains("include accounts.conf"));
        let deployed = Security::AsDeployed(
            Certificates {
                ca: "/tmp/ca.pem".into(),
                cert: "/tmp/s.pem".into(),
                key: "/tmp/s.key".into(),
            },
            |account| format!("{account}-secret"),
        );
        write_loopback_cluster(&dir, &ports, &deployed).unwrap();
        let shared = std::fs::read_to_string(dir.join("pi1/janitoo.conf")).unwrap();
        assert!(
            shared.contains("cert_file: \"/tmp/s.pem\"")
                && shared.contains("include accounts.conf")
        );
        let passwords = std::fs::read_to_string(dir.join("pi1/passwords.conf")).unwrap();
        assert!(
            passwords.contains("SERVER_TUTORIAL_PASSWORD: \"server-tutorial-secret\""),
            "{passwords}"
        );
        assert!(
            passwords.contains("HOME_ASSISTANT_PASSWORD: \"homeassistant-secret\""),
            "{passwords}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
