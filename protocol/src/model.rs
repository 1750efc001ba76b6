//! The small enumerations of the value and node model: genres, value types, capabilities,
//! node and network states, and the kinds of discovery request.

use std::fmt;

/// A value's genre: who it is for, and the `/values/<genre>/...` topic segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Genre {
    /// 0x01: the node's main level, as Z-Wave's Basic class.
    #[default]
    Basic = 0x01,
    /// 0x02: what an ordinary user cares about (readings, switches).
    User = 0x02,
    /// 0x03: configuration parameters, persisted.
    Config = 0x03,
    /// 0x04: protocol values (heartbeat, hadd, discovery requests).
    System = 0x04,
    /// 0x05: complex commands.
    Command = 0x05,
}

impl Genre {
    /// Every genre in code order.
    pub const ALL: [Genre; 5] = [
        Genre::Basic,
        Genre::User,
        Genre::Config,
        Genre::System,
        Genre::Command,
    ];

    /// The wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The genre with this wire code.
    pub fn from_code(code: i64) -> Option<Genre> {
        Genre::ALL
            .into_iter()
            .find(|genre| i64::from(genre.code()) == code)
    }

    /// The topic segment: `basic`, `user`, `config`, `system`, `command`.
    pub fn segment(self) -> &'static str {
        match self {
            Genre::Basic => "basic",
            Genre::User => "user",
            Genre::Config => "config",
            Genre::System => "system",
            Genre::Command => "command",
        }
    }

    /// The genre named by a topic segment (or a command-line word).
    pub fn from_segment(segment: &str) -> Option<Genre> {
        Genre::ALL
            .into_iter()
            .find(|genre| genre.segment() == segment)
    }
}

impl fmt::Display for Genre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment())
    }
}

/// A value's data type (`type` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueType {
    /// 0x01: true or false.
    Bool = 0x01,
    /// 0x02: unsigned 8-bit.
    Byte = 0x02,
    /// 0x03: a non-integer number (a JSON number on the wire).
    Decimal = 0x03,
    /// 0x04: signed 32-bit.
    Int = 0x04,
    /// 0x05: one choice of `list_items`.
    List = 0x05,
    /// 0x06: a climate schedule (unused).
    Schedule = 0x06,
    /// 0x07: signed 16-bit.
    Short = 0x07,
    /// 0x08: text.
    String = 0x08,
    /// 0x09: a write-only "press".
    Button = 0x09,
    /// 0x10: raw bytes.
    Raw = 0x10,
    /// 0x14: a secret string.
    Password = 0x14,
    /// 0x15: a JSON-encoded complex value.
    Json = 0x15,
    /// 0x16: values joined with `|`.
    Array = 0x16,
    /// 0x17: a variable type, for remote values.
    Var = 0x17,
    /// 0x20: a HADD.
    Hadd = 0x20,
    /// 0x21: a dotted IPv4 address.
    Ip = 0x21,
    /// 0x30: a colour, `bbb#bbb#bbb`.
    Rgb = 0x30,
}

impl ValueType {
    /// Every type in code order.
    pub const ALL: [ValueType; 17] = [
        ValueType::Bool,
        ValueType::Byte,
        ValueType::Decimal,
        ValueType::Int,
        ValueType::List,
        ValueType::Schedule,
        ValueType::Short,
        ValueType::String,
        ValueType::Button,
        ValueType::Raw,
        ValueType::Password,
        ValueType::Json,
        ValueType::Array,
        ValueType::Var,
        ValueType::Hadd,
        ValueType::Ip,
        ValueType::Rgb,
    ];

    /// The wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The type with this wire code.
    pub fn from_code(code: i64) -> Option<ValueType> {
        ValueType::ALL
            .into_iter()
            .find(|kind| i64::from(kind.code()) == code)
    }

    /// The original's name (`VALUE_DESC`).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Bool => "Bool",
            ValueType::Byte => "Byte",
            ValueType::Decimal => "Decimal",
            ValueType::Int => "Int",
            ValueType::List => "List",
            ValueType::Schedule => "Schedule",
            ValueType::Short => "Short",
            ValueType::String => "String",
            ValueType::Button => "Button",
            ValueType::Raw => "Raw",
            ValueType::Password => "Password",
            ValueType::Json => "Json",
            ValueType::Array => "Array",
            ValueType::Var => "Var",
            ValueType::Hadd => "HADD",
            ValueType::Ip => "IP",
            ValueType::Rgb => "RGB",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node capability code (`capabilities` in node info). Unknown codes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(pub u8);

impl Capability {
    /// `CAPABILITY_NO_OPERATION`
    pub const NO_OPERATION: Capability = Capability(0x00);
    /// `CAPABILITY_PRIMARY_CONTROLLER`
    pub const PRIMARY_CONTROLLER: Capability = Capability(0x01);
    /// `CAPABILITY_STATIC_UPDATE_CONTROLLER`
    pub const STATIC_UPDATE_CONTROLLER: Capability = Capability(0x02);
    /// `CAPABILITY_BRIDGE_CONTROLLER`
    pub const BRIDGE_CONTROLLER: Capability = Capability(0x03);
    /// `CAPABILITY_DYNAMIC_CONTROLLER`: full DHCP management; every bus controller sets it.
    pub const DYNAMIC_CONTROLLER: Capability = Capability(0x04);
    /// `CAPABILITY_TINY_CONTROLLER`: DHCP for Arduino-class devices (small messages).
    pub const TINY_CONTROLLER: Capability = Capability(0x05);
    /// `CAPABILITY_ROUTING`
    pub const ROUTING: Capability = Capability(0x10);
    /// `CAPABILITY_LISTENING`
    pub const LISTENING: Capability = Capability(0x20);
    /// `CAPABILITY_FREQUENT`
    pub const FREQUENT: Capability = Capability(0x21);
    /// `CAPABILITY_SECURITY`
    pub const SECURITY: Capability = Capability(0x50);
    /// `CAPABILITY_BEAMING`
    pub const BEAMING: Capability = Capability(0x60);
    /// `CAPABILITY_SLEEPING`
    pub const SLEEPING: Capability = Capability(0x80);

    /// The original's constant name, if the code is known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "CAPABILITY_NO_OPERATION",
            0x01 => "CAPABILITY_PRIMARY_CONTROLLER",
            0x02 => "CAPABILITY_STATIC_UPDATE_CONTROLLER",
            0x03 => "CAPABILITY_BRIDGE_CONTROLLER",
            0x04 => "CAPABILITY_DYNAMIC_CONTROLLER",
            0x05 => "CAPABILITY_TINY_CONTROLLER",
            0x10 => "CAPABILITY_ROUTING",
            0x20 => "CAPABILITY_LISTENING",
            0x21 => "CAPABILITY_FREQUENT",
            0x50 => "CAPABILITY_SECURITY",
            0x60 => "CAPABILITY_BEAMING",
            0x80 => "CAPABILITY_SLEEPING",
            _ => return None,
        })
    }
}

/// A node's state at network level (heartbeats, leases, the map).
///
/// The original's `leases_states` plus the node-manager states a heartbeat may carry. On the
/// wire the state is upper-case text; we accept any case (the original mixed them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Working.
    Online,
    /// Starting up.
    Boot,
    /// Loading its configuration (a node-manager state, level of BOOT).
    Config,
    /// Loading its system values (a node-manager state).
    System,
    /// Creating its components (a node-manager state).
    Init,
    /// A heartbeat was missed.
    Pending,
    /// Vanished after being online.
    Failed,
    /// Failed for a long time; may be removed.
    Dead,
    /// Announced its shutdown (or its Last Will did).
    Offline,
    /// No heartbeat seen yet.
    Unknown,
}

impl NodeState {
    /// Every state.
    pub const ALL: [NodeState; 10] = [
        NodeState::Online,
        NodeState::Boot,
        NodeState::Config,
        NodeState::System,
        NodeState::Init,
        NodeState::Pending,
        NodeState::Failed,
        NodeState::Dead,
        NodeState::Offline,
        NodeState::Unknown,
    ];

    /// The wire text (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Online => "ONLINE",
            NodeState::Boot => "BOOT",
            NodeState::Config => "CONFIG",
            NodeState::System => "SYSTEM",
            NodeState::Init => "INIT",
            NodeState::Pending => "PENDING",
            NodeState::Failed => "FAILED",
            NodeState::Dead => "DEAD",
            NodeState::Offline => "OFFLINE",
            NodeState::Unknown => "UNKNOWN",
        }
    }

    /// Parses a state in any case; surrounding white space is ignored.
    pub fn parse(text: &str) -> Option<NodeState> {
        let text = text.trim();
        NodeState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
    }

    /// The original's numeric level: ONLINE 5, BOOT/CONFIG 4, PENDING 3, FAILED 2, DEAD 1,
    /// OFFLINE 0, UNKNOWN -1 (the node-manager states SYSTEM and INIT count as BOOT).
    pub fn level(self) -> i8 {
        match self {
            NodeState::Online => 5,
            NodeState::Boot | NodeState::Config | NodeState::System | NodeState::Init => 4,
            NodeState::Pending => 3,
            NodeState::Failed => 2,
            NodeState::Dead => 1,
            NodeState::Offline => 0,
            NodeState::Unknown => -1,
        }
    }

    /// Whether a heartbeat in this state means the node is alive and beating.
    pub fn is_alive(self) -> bool {
        self.level() >= 4
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The states of the original network map's state machine (`fsm_network_states`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkState {
    /// Not running.
    Stopped,
    /// Primary boot: discovering nodes by broadcast.
    BroadcastNodes,
    /// Discovering system values.
    Systems,
    /// Discovering command values.
    Commands,
    /// Discovering config values.
    Configs,
    /// Discovering basic values.
    Basics,
    /// Discovering user values.
    Users,
    /// Asking controllers first seen by their heartbeat.
    HeartbeatDiscover,
    /// Publishing heartbeats on behalf of silent nodes.
    Dispatch,
    /// Running.
    Started,
    /// Secondary boot: asking the primary for its map.
    Resolv,
    /// Secondary: waiting for the primary's heartbeat.
    Heartbeat,
}

impl NetworkState {
    /// The state's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkState::Stopped => "STOPPED",
            NetworkState::BroadcastNodes => "BROADCAST_NODES",
            NetworkState::Systems => "SYSTEMS",
            NetworkState::Commands => "COMMANDS",
            NetworkState::Configs => "CONFIGS",
            NetworkState::Basics => "BASICS",
            NetworkState::Users => "USERS",
            NetworkState::HeartbeatDiscover => "HEARTBEAT_DISCOVER",
            NetworkState::Dispatch => "DISPATCH",
            NetworkState::Started => "STARTED",
            NetworkState::Resolv => "RESOLV",
            NetworkState::Heartbeat => "HEARTBEAT",
        }
    }
}

/// The six discovery requests (`NETWORK_REQUESTS`), each the `uuid` of a request with
/// command class 0x5000 and genre system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InfoKind {
    /// `request_info_nodes`: node info of every node.
    Nodes,
    /// `request_info_users`: user values.
    Users,
    /// `request_info_configs`: config values.
    Configs,
    /// `request_info_systems`: system values.
    Systems,
    /// `request_info_basics`: basic values.
    Basics,
    /// `request_info_commands`: command values.
    Commands,
}

impl InfoKind {
    /// All six, in the order the original's primary asks them.
    pub const ALL: [InfoKind; 6] = [
        InfoKind::Nodes,
        InfoKind::Systems,
        InfoKind::Commands,
        InfoKind::Configs,
        InfoKind::Basics,
        InfoKind::Users,
    ];

    /// The request uuid.
    pub fn uuid(self) -> &'static str {
        match self {
            InfoKind::Nodes => "request_info_nodes",
            InfoKind::Users => "request_info_users",
            InfoKind::Configs => "request_info_configs",
            InfoKind::Systems => "request_info_systems",
            InfoKind::Basics => "request_info_basics",
            InfoKind::Commands => "request_info_commands",
        }
    }

    /// The kind whose request uuid this is.
    pub fn from_uuid(uuid: &str) -> Option<InfoKind> {
        InfoKind::ALL.into_iter().find(|kind| kind.uuid() == uuid)
    }

    /// The genre of the values this request asks for (`None` for node info).
    pub fn genre(self) -> Option<Genre> {
        match self {
            InfoKind::Nodes => None,
            InfoKind::Users => Some(Genre::User),
            InfoKind::Configs => Some(Genre::Config),
            InfoKind::Systems => Some(Genre::System),
            InfoKind::Basics => Some(Genre::Basic),
            InfoKind::Commands => Some(Genre::Command),
        }
    }

    /// The kind that asks for values of `genre`.
    pub fn for_genre(genre: Genre) -> InfoKind {
        match genre {
            Genre::Basic => InfoKind::Basics,
            Genre::User => InfoKind::Users,
            Genre::Config => InfoKind::Configs,
            Genre::System => InfoKind::Systems,
            Genre::Command => InfoKind::Commands,
        }
    }

    /// Whether the original answers with two levels (`{hadd: {uuid: value}}`, no index):
    /// true for systems and commands.
    pub fn answers_without_index(self) -> bool {
        matches!(self, InfoKind::Systems | InfoKind::Commands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genre_codes_and_segments() {
        for genre in Genre::ALL {
            assert_eq!(Genre::from_code(genre.code().into()), Some(genre));
            assert_eq!(Genre::from_segment(genre.segment()), Some(genre));
        }
        assert_eq!(Genre::from_code(0), None);
        assert_eq!(Genre::from_code(6), None);
    }

    #[test]
    fn value_type_codes() {
        assert_eq!(ValueType::from_code(0x20), Some(ValueType::Hadd));
        assert_eq!(ValueType::from_code(0x11), None);
        for kind in ValueType::ALL {
            assert_eq!(ValueType::from_code(kind.code().into()), Some(kind));
        }
    }

    #[test]
    fn states_parse_in_any_case_and_have_levels() {
        assert_eq!(NodeState::parse("dead"), Some(NodeState::Dead));
        assert_eq!(NodeState::parse(" ONLINE\n"), Some(NodeState::Online));
        assert_eq!(NodeState::parse("sleepy"), None);
        assert_eq!(NodeState::Online.level(), 5);
        assert_eq!(NodeState::Unknown.level(), -1);
        assert!(NodeState::Boot.is_alive() && !NodeState::Pending.is_alive());
    }

    #[test]
    fn info_kinds() {
        assert_eq!(
            InfoKind::from_uuid("request_info_configs"),
            Some(InfoKind::Configs)
        );
        assert_eq!(InfoKind::for_genre(Genre::Command), InfoKind::Commands);
        assert!(InfoKind::Systems.answers_without_index());
        assert!(!InfoKind::Users.answers_without_index());
    }
}
