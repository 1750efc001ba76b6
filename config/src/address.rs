//! [`BrokerAddress`]: `host:port` of an MQTT broker, parsed once, wherever it comes from (the
//! configuration file, a command-line option); [`BrokerList`]: the brokers a process may use,
//! in its order of preference (`[broker] addresses`, `--broker a,b,c`).

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

/// The brokers a process may use, in its order of preference: one at least, none twice. The
/// process starts on the first and moves to the next when its broker fails (or, on a node
/// server, when no primary is heard there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerList(Vec<BrokerAddress>);

/// Why a list of brokers is refused: which entry (counted from 1), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadList {
    /// No address at all.
    Empty,
    /// Entry `position` is no address.
    Entry {
        /// Counted from 1.
        position: usize,
        /// Why.
        bad: BadAddress,
    },
    /// Entry `position` repeats an earlier one.
    Repeated {
        /// Counted from 1.
        position: usize,
        /// The address given twice.
        address: BrokerAddress,
    },
}

impl fmt::Display for BadList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadList::Empty => write!(f, "no broker address given"),
            BadList::Entry { position, bad } => write!(f, "broker {position}: {bad}"),
            BadList::Repeated { position, address } => {
                write!(f, "broker {position}: {address} is given twice")
            }
        }
    }
}

impl std::error::Error for BadList {}

impl BrokerList {
    /// The brokers of `addresses`, in that order: refused when empty or with one twice.
    pub fn new(addresses: Vec<BrokerAddress>) -> Result<BrokerList, BadList> {
        if addresses.is_empty() {
            return Err(BadList::Empty);
        }
        for (at, address) in addresses.iter().enumerate() {
            if addresses[..at].contains(address) {
                return Err(BadList::Repeated {
                    position: at + 1,
                    address: address.clone(),
                });
            }
        }
        Ok(BrokerList(addresses))
    }

    /// Each entry of `entries` read as an address, then [`BrokerList::new`].
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<BrokerList, BadList> {
        let addresses = entries
            .into_iter()
            .enumerate()
            .map(|(at, text)| {
                text.parse().map_err(|bad| BadList::Entry {
                    position: at + 1,
                    bad,
                })
            })
            .collect::<Result<Vec<BrokerAddress>, BadList>>()?;
        BrokerList::new(addresses)
    }

    /// The first: where a process starts.
    pub fn first(&self) -> &BrokerAddress {
        &self.0[0]
    }

    /// The broker at `position` (0 for the first), wrapping around the list.
    pub fn at(&self, position: usize) -> &BrokerAddress {
        &self.0[position % self.0.len()]
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a list has one broker at least.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every broker, in order.
    pub fn iter(&self) -> impl Iterator<Item = &BrokerAddress> {
        self.0.iter()
    }
}

impl From<BrokerAddress> for BrokerList {
    fn from(address: BrokerAddress) -> BrokerList {
        BrokerList(vec![address])
    }
}

impl From<std::net::SocketAddr> for BrokerList {
    fn from(addr: std::net::SocketAddr) -> BrokerList {
        BrokerList::from(BrokerAddress::from(addr))
    }
}

/// `host:port`, or several separated by commas (`pi1:1883,pi2:1883`).
impl FromStr for BrokerList {
    type Err = BadList;

    fn from_str(text: &str) -> Result<BrokerList, BadList> {
        BrokerList::parse(text.split(','))
    }
}

impl fmt::Display for BrokerList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, address) in self.0.iter().enumerate() {
            if at > 0 {
                f.write_str(",")?;
            }
            write!(f, "{address}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_its_order_and_names_each_bad_entry() {
        let list: BrokerList = "pi1:1883, pi2:1883,[::1]:8883".parse().unwrap();
        assert_eq!(list.to_string(), "pi1:1883,pi2:1883,[::1]:8883");
        assert_eq!(list.first().host(), "pi1");
        assert_eq!(list.at(4).host(), "pi2", "wraps around");
        assert_eq!(list.len(), 3);
        let one: BrokerList = "127.0.0.1:1883".parse().unwrap();
        assert_eq!(one, BrokerList::from(BrokerAddress::new("127.0.0.1", 1883)));
        for (bad, says) in [
            ("pi1:1883,pi2", "broker 2: \"pi2\": expected host:port"),
            ("pi1:1883,,pi3:1883", "broker 2: \"\": expected host:port"),
            (
                "pi1:1883,pi2:1883,pi1:1883",
                "broker 3: pi1:1883 is given twice",
            ),
            ("", "broker 1: \"\": expected host:port"),
        ] {
            let err = bad.parse::<BrokerList>().unwrap_err().to_string();
            assert!(err.starts_with(says), "{bad:?}: {err}");
        }
        assert_eq!(BrokerList::new(Vec::new()), Err(BadList::Empty));
    }

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
