//! The `[homeassistant]` section: Home Assistant's MQTT discovery, published by the primary.
//!
//! ```toml
//! [homeassistant]
//! enabled = true                       # default when the section is there
//! discovery_prefix = "homeassistant"   # Home Assistant's own default
//! genres = ["user", "basic"]           # "config" adds configuration entities
//! network = "janitoo"                  # in unique ids: two networks on one broker differ here
//! ```

use janitoo_protocol::homeassistant::DiscoverySettings;
use janitoo_protocol::Genre;
use serde::Deserialize;

use crate::check::Checker;
use crate::error::ConfigError;

/// What the primary tells Home Assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeAssistantConfig {
    /// Home Assistant's discovery prefix (default `homeassistant`).
    pub discovery_prefix: String,
    /// The genres whose values become entities (default user and basic).
    pub genres: Vec<Genre>,
    /// The network's name in ids and topics (default `janitoo`).
    pub network: String,
}

impl HomeAssistantConfig {
    /// What the primary's discovery publishes.
    pub fn discovery(&self) -> DiscoverySettings {
        DiscoverySettings {
            prefix: self.discovery_prefix.clone(),
            network: self.network.clone(),
            genres: self.genres.clone(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHomeAssistant {
    enabled: Option<bool>,
    discovery_prefix: Option<String>,
    genres: Option<Vec<String>>,
    network: Option<String>,
}

impl Checker<'_> {
    /// The section, when it is there and enabled.
    pub(crate) fn home_assistant(
        &self,
        raw: Option<RawHomeAssistant>,
        has_role: bool,
    ) -> Result<Option<HomeAssistantConfig>, ConfigError> {
        let Some(raw) = raw.filter(|raw| raw.enabled != Some(false)) else {
            return Ok(None);
        };
        if !has_role {
            return Err(self.invalid(
                "homeassistant",
                "a network controller (`[network] role`): the primary publishes discovery",
                "no role",
            ));
        }
        let prefix = raw
            .discovery_prefix
            .unwrap_or_else(|| "homeassistant".into());
        let prefix_ok = !prefix.is_empty()
            && !prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains(['+', '#', '\0'])
            && prefix.len() <= 200;
        if !prefix_ok {
            return Err(self.invalid(
                "homeassistant.discovery_prefix",
                "a topic prefix without wildcards or a leading or trailing '/'",
                format!("{prefix:?}"),
            ));
        }
        let names = raw
            .genres
            .unwrap_or_else(|| vec!["user".into(), "basic".into()]);
        let mut genres = Vec::new();
        for name in &names {
            let genre = Genre::from_segment(name).ok_or_else(|| {
                self.invalid(
                    "homeassistant.genres",
                    "genres among \"user\", \"basic\", \"config\", \"system\", \"command\"",
                    format!("{name:?}"),
                )
            })?;
            if !genres.contains(&genre) {
                genres.push(genre);
            }
        }
        if genres.is_empty() {
            return Err(self.invalid(
                "homeassistant.genres",
                "at least one genre",
                "an empty list",
            ));
        }
        let network = raw.network.unwrap_or_else(|| "janitoo".into());
        let network_ok = !network.is_empty()
            && network.len() <= 64
            && network
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !network_ok {
            return Err(self.invalid(
                "homeassistant.network",
                "a name of letters, digits and '-', at most 64",
                format!("{network:?}"),
            ));
        }
        Ok(Some(HomeAssistantConfig {
            discovery_prefix: prefix,
            genres,
            network,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Config, ConfigError};

    const CONTROLLER: &str = "[network]\nrole = \"auto\"\nhadd = \"0900/0000\"\n";

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!("{CONTROLLER}{extra}"), Path::new("janitoo.toml"))
    }

    #[test]
    fn the_section_alone_enables_discovery_with_home_assistants_defaults() {
        let config = parse("[homeassistant]\n").unwrap();
        let ha = config.home_assistant.unwrap();
        assert_eq!(ha.discovery_prefix, "homeassistant");
        assert_eq!(
            ha.genres,
            vec![
                janitoo_protocol::Genre::User,
                janitoo_protocol::Genre::Basic
            ]
        );
        assert_eq!(ha.network, "janitoo");
        assert_eq!(parse("").unwrap().home_assistant, None);
        assert_eq!(
            parse("[homeassistant]\nenabled = false\n")
                .unwrap()
                .home_assistant,
            None
        );
    }

    #[test]
    fn settings_are_read() {
        let ha = parse(
            "[homeassistant]\ndiscovery_prefix = \"ha/disc\"\ngenres = [\"config\", \"user\", \"config\"]\nnetwork = \"house-2\"\n",
        )
        .unwrap()
        .home_assistant
        .unwrap();
        assert_eq!(ha.discovery_prefix, "ha/disc");
        assert_eq!(
            ha.genres,
            vec![
                janitoo_protocol::Genre::Config,
                janitoo_protocol::Genre::User
            ]
        );
        assert_eq!(ha.network, "house-2");
    }

    #[test]
    fn bad_settings_are_named() {
        for (extra, key, found) in [
            (
                "discovery_prefix = \"ha/#\"",
                "homeassistant.discovery_prefix",
                "\"ha/#\"",
            ),
            (
                "discovery_prefix = \"/ha\"",
                "homeassistant.discovery_prefix",
                "\"/ha\"",
            ),
            (
                "discovery_prefix = \"\"",
                "homeassistant.discovery_prefix",
                "\"\"",
            ),
            ("genres = [\"users\"]", "homeassistant.genres", "\"users\""),
            ("genres = []", "homeassistant.genres", "an empty list"),
            (
                "network = \"my house\"",
                "homeassistant.network",
                "\"my house\"",
            ),
        ] {
            let err = parse(&format!("[homeassistant]\n{extra}\n")).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(key) && text.contains(found),
                "{extra}: {text}"
            );
        }
        let err = Config::parse("[homeassistant]\n", Path::new("janitoo.toml")).unwrap_err();
        assert!(err.to_string().contains("`[network] role`"), "{err}");
        let err = parse("[homeassistant]\nprefix = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("prefix"), "{err}");
    }
}
