//! [`BrokerAddress`]: `host:port` of an MQTT broker, parsed once, wherever it comes from (the
//! configuration file, a command-line option).

use std::fmt;
use std::str::FromStr;

/// An MQTT broker's `host:port` (`[::1]:1883` for an IPv6 address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddress {
    host: String,
    port: u16,
}

/// Why a text is not a broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAddress {
    /// The text.
    pub text: String,
}

impl fmt::Display for BadAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: expected host:port, with a port 1 to 65535 (like 127.0.0.1:1883)",
            self.text
        )
    }
}

impl std::error::Error for BadAddress {}

impl BrokerAddress {
    /// `host` and `port`.
    pub fn new(host: impl Into<String>, port: u16) -> BrokerAddress {
        BrokerAddress {
            host: host.into(),
            port,
        }
    }

    /// The host name or IP address (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for BrokerAddress {
    type Err = BadAddress;

    fn from_str(text: &str) -> Result<BrokerAddress, BadAddress> {
        let bad = || BadAddress {
            text: text.to_owned(),
        };
        let (host, port) = text.trim().rsplit_once(':').ok_or_else(bad)?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(BrokerAddress::new(host, port))
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<std::net::SocketAddr> for BrokerAddress {
    fn from(addr: std::net::SocketAddr) -> BrokerAddress {
        BrokerAddress::new(addr.ip().to_string(), addr.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_once_and_shown_back() {
        for text in ["127.0.0.1:1883", "mqtt.home.lan:8883", "[::1]:1883"] {
            let address: BrokerAddress = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        let v6: BrokerAddress = "[::1]:1883".parse().unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 1883));
        for bad in [
            "",
            "host",
            ":1883",
            "host:",
            "host:0",
            "host:65536",
            "::1:1883",
            "[::1:1883",
            "a b:1",
        ] {
            let err = bad.parse::<BrokerAddress>().unwrap_err();
            assert!(
                err.to_string().contains("expected host:port"),
                "{bad}: {err}"
            );
        }
        let socket: std::net::SocketAddr = "127.0.0.1:1884".parse().unwrap();
        assert_eq!(BrokerAddress::from(socket).to_string(), "127.0.0.1:1884");
    }
}
