//! Command classes: a value's capability (switch, sensor, configuration...), as a 16-bit code.
//!
//! Codes `0x0000..=0x00F0` come from Z-Wave (through OpenZWave); codes from `0x1000` are
//! Janitoo's own. The table holds all 131 classes of the original; other codes are accepted on
//! the wire (the original never checked them) and simply have no name.

use std::fmt;

use crate::model::Genre;

/// A command class code. The named constants are the original's `COMMAND_*` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CommandClass(pub u16);

macro_rules! command_classes {
    ($($constant:ident = $code:expr, $name:expr;)*) => {
        impl CommandClass {
    /// The command class a get or set of a value of `genre` must carry for the original's
    /// nodes to answer it (they drop anything else): CONFIGURATION for config and system
    /// values, the value's own (`value_class`, when known) for the others. Ours answer any.
    pub fn for_request(genre: Genre, value_class: Option<CommandClass>) -> CommandClass {
        match genre {
            Genre::Config | Genre::System => CommandClass::CONFIGURATION,
            Genre::Basic | Genre::User | Genre::Command => value_class.unwrap_or_default(),
        }
    }

            $(
                #[doc = concat!("`", $name, "`")]
                pub const $constant: CommandClass = CommandClass($code);
            )*
        }

        /// Every known command class with the original's constant name, ordered by code.
        pub const COMMAND_CLASSES: &[(CommandClass, &str)] = &[
            $((CommandClass($code), $name),)*
        ];
    };
}

command_classes! {
    NO_OPERATION = 0x0000, "COMMAND_NO_OPERATION";
    BASIC = 0x0020, "COMMAND_BASIC";
    CONTROLLER_REPLICATION = 0x0021, "COMMAND_CONTROLLER_REPLICATION";
    APPLICATION_STATUS = 0x0022, "COMMAND_APPLICATION_STATUS";
    ZIP_SERVICES = 0x0023, "COMMAND_ZIP_SERVICES";
    ZIP_SERVER = 0x0024, "COMMAND_ZIP_SERVER";
    SWITCH_BINARY = 0x0025, "COMMAND_SWITCH_BINARY";
    SWITCH_MULTILEVEL = 0x0026, "COMMAND_SWITCH_MULTILEVEL";
    SWITCH_ALL = 0x0027, "COMMAND_SWITCH_ALL";
    SWITCH_TOGGLE_BINARY = 0x0028, "COMMAND_SWITCH_TOGGLE_BINARY";
    SWITCH_TOGGLE_MULTILEVEL = 0x0029, "COMMAND_SWITCH_TOGGLE_MULTILEVEL";
    CHIMNEY_FAN = 0x002A, "COMMAND_CHIMNEY_FAN";
    SCENE_ACTIVATION = 0x002B, "COMMAND_SCENE_ACTIVATION";
    SCENE_ACTUATOR_CONF = 0x002C, "COMMAND_SCENE_ACTUATOR_CONF";
    SCENE_CONTROLLER_CONF = 0x002D, "COMMAND_SCENE_CONTROLLER_CONF";
    ZIP_CLIENT = 0x002E, "COMMAND_ZIP_CLIENT";
    ZIP_ADV_SERVICES = 0x002F, "COMMAND_ZIP_ADV_SERVICES";
    SENSOR_BINARY = 0x0030, "COMMAND_SENSOR_BINARY";
    SENSOR_MULTILEVEL = 0x0031, "COMMAND_SENSOR_MULTILEVEL";
    METER = 0x0032, "COMMAND_METER";
    CLASS_COLOR = 0x0033, "COMMAND_CLASS_COLOR";
    ZIP_ADV_CLIENT = 0x0034, "COMMAND_ZIP_ADV_CLIENT";
    METER_PULSE = 0x0035, "COMMAND_METER_PULSE";
    THERMOSTAT_HEATING = 0x0038, "COMMAND_THERMOSTAT_HEATING";
    METER_TBL_CONFIG = 0x003C, "COMMAND_METER_TBL_CONFIG";
    METER_TBL_MONITOR = 0x003D, "COMMAND_METER_TBL_MONITOR";
    METER_TBL_PUSH = 0x003E, "COMMAND_METER_TBL_PUSH";
    THERMOSTAT_MODE = 0x0040, "COMMAND_THERMOSTAT_MODE";
    THERMOSTAT_OPERATING_STATE = 0x0042, "COMMAND_THERMOSTAT_OPERATING_STATE";
    THERMOSTAT_SETPOINT = 0x0043, "COMMAND_THERMOSTAT_SETPOINT";
    THERMOSTAT_FAN_MODE = 0x0044, "COMMAND_THERMOSTAT_FAN_MODE";
    THERMOSTAT_FAN_STATE = 0x0045, "COMMAND_THERMOSTAT_FAN_STATE";
    CLIMATE_CONTROL_SCHEDULE = 0x0046, "COMMAND_CLIMATE_CONTROL_SCHEDULE";
    THERMOSTAT_SETBACK = 0x0047, "COMMAND_THERMOSTAT_SETBACK";
    DOOR_LOCK_LOGGING = 0x004C, "COMMAND_DOOR_LOCK_LOGGING";
    SCHEDULE_ENTRY_LOCK = 0x004E, "COMMAND_SCHEDULE_ENTRY_LOCK";
    BASIC_WINDOW_COVERING = 0x0050, "COMMAND_BASIC_WINDOW_COVERING";
    MTP_WINDOW_COVERING = 0x0051, "COMMAND_MTP_WINDOW_COVERING";
    MULTI_CHANNEL_V2 = 0x0060, "COMMAND_MULTI_CHANNEL_V2";
    DISPLAY = 0x0061, "COMMAND_DISPLAY";
    DOOR_LOCK = 0x0062, "COMMAND_DOOR_LOCK";
    USER_CODE = 0x0063, "COMMAND_USER_CODE";
    GARAGE_DOOR = 0x0064, "COMMAND_GARAGE_DOOR";
    CONFIGURATION = 0x0070, "COMMAND_CONFIGURATION";
    ALARM = 0x0071, "COMMAND_ALARM";
    MANUFACTURER_SPECIFIC = 0x0072, "COMMAND_MANUFACTURER_SPECIFIC";
    POWERLEVEL = 0x0073, "COMMAND_POWERLEVEL";
    PROTECTION = 0x0075, "COMMAND_PROTECTION";
    LOCK = 0x0076, "COMMAND_LOCK";
    NODE_NAMING = 0x0077, "COMMAND_NODE_NAMING";
    ACTUATOR_MULTILEVEL = 0x0078, "COMMAND_ACTUATOR_MULTILEVEL";
    KICK = 0x0079, "COMMAND_KICK";
    FIRMWARE_UPDATE_MD = 0x007A, "COMMAND_FIRMWARE_UPDATE_MD";
    GROUPING_NAME = 0x007B, "COMMAND_GROUPING_NAME";
    REMOTE_ASSOCIATION_ACTIVATE = 0x007C, "COMMAND_REMOTE_ASSOCIATION_ACTIVATE";
    REMOTE_ASSOCIATION = 0x007D, "COMMAND_REMOTE_ASSOCIATION";
    BATTERY = 0x0080, "COMMAND_BATTERY";
    CLOCK = 0x0081, "COMMAND_CLOCK";
    HAIL = 0x0082, "COMMAND_HAIL";
    NETWORK_STAT = 0x0083, "COMMAND_NETWORK_STAT";
    WAKE_UP = 0x0084, "COMMAND_WAKE_UP";
    ASSOCIATION = 0x0085, "COMMAND_ASSOCIATION";
    VERSION = 0x0086, "COMMAND_VERSION";
    INDICATOR = 0x0087, "COMMAND_INDICATOR";
    PROPRIETARY = 0x0088, "COMMAND_PROPRIETARY";
    LANGUAGE = 0x0089, "COMMAND_LANGUAGE";
    TIME = 0x008A, "COMMAND_TIME";
    TIME_PARAMETERS = 0x008B, "COMMAND_TIME_PARAMETERS";
    GEOGRAPHIC_LOCATION = 0x008C, "COMMAND_GEOGRAPHIC_LOCATION";
    COMPOSITE = 0x008D, "COMMAND_COMPOSITE";
    MULTI_INSTANCE_ASSOCIATION = 0x008E, "COMMAND_MULTI_INSTANCE_ASSOCIATION";
    MULTI_CMD = 0x008F, "COMMAND_MULTI_CMD";
    ENERGY_PRODUCTION = 0x0090, "COMMAND_ENERGY_PRODUCTION";
    MANUFACTURER_PROPRIETARY = 0x0091, "COMMAND_MANUFACTURER_PROPRIETARY";
    SCREEN_MD = 0x0092, "COMMAND_SCREEN_MD";
    SCREEN_ATTRIBUTES = 0x0093, "COMMAND_SCREEN_ATTRIBUTES";
    SIMPLE_AV_CONTROL = 0x0094, "COMMAND_SIMPLE_AV_CONTROL";
    AV_CONTENT_DIRECTORY_MD = 0x0095, "COMMAND_AV_CONTENT_DIRECTORY_MD";
    AV_RENDERER_STATUS = 0x0096, "COMMAND_AV_RENDERER_STATUS";
    AV_CONTENT_SEARCH_MD = 0x0097, "COMMAND_AV_CONTENT_SEARCH_MD";
    SECURITY = 0x0098, "COMMAND_SECURITY";
    AV_TAGGING_MD = 0x0099, "COMMAND_AV_TAGGING_MD";
    IP_CONFIGURATION = 0x009A, "COMMAND_IP_CONFIGURATION";
    ASSOCIATION_CONFIGURATION = 0x009B, "COMMAND_ASSOCIATION_CONFIGURATION";
    SENSOR_ALARM = 0x009C, "COMMAND_SENSOR_ALARM";
    SILENCE_ALARM = 0x009D, "COMMAND_SILENCE_ALARM";
    SENSOR_CONFIGURATION = 0x009E, "COMMAND_SENSOR_CONFIGURATION";
    MARK = 0x00EF, "COMMAND_MARK";
    NON_INTEROPERABLE = 0x00F0, "COMMAND_NON_INTEROPERABLE";
    DHCPD = 0x1000, "COMMAND_DHCPD";
    DHCPC = 0x1001, "COMMAND_DHCPC";
    EVENT_ACTIVATION = 0x1010, "COMMAND_EVENT_ACTIVATION";
    EVENT_ACTUATOR_CONF = 0x1011, "COMMAND_EVENT_ACTUATOR_CONF";
    EVENT_CONTROLLER_CONF = 0x1012, "COMMAND_EVENT_CONTROLLER_CONF";
    SCENARIO_ACTIVATION = 0x1020, "COMMAND_SCENARIO_ACTIVATION";
    SCENARIO_ACTUATOR_CONF = 0x1021, "COMMAND_SCENARIO_ACTUATOR_CONF";
    SCENARIO_CONTROLLER_CONF = 0x1022, "COMMAND_SCENARIO_CONTROLLER_CONF";
    WEB_CONTROLLER = 0x1030, "COMMAND_WEB_CONTROLLER";
    WEB_RESOURCE = 0x1031, "COMMAND_WEB_RESOURCE";
    DOC_RESOURCE = 0x1032, "COMMAND_DOC_RESOURCE";
    UPDATE = 0x1040, "COMMAND_UPDATE";
    CONTROLLER = 0x1050, "COMMAND_CONTROLLER";
    NETWORK_CONTROLLER = 0x1051, "COMMAND_NETWORK_CONTROLLER";
    NDDE = 0x1060, "COMMAND_NDDE";
    JMI = 0x10A0, "COMMAND_JMI";
    FSM = 0x10B0, "COMMAND_FSM";
    ROOMBA_VACUUM = 0x2000, "COMMAND_ROOMBA_VACUUM";
    ROOMBA_DRIVE = 0x2001, "COMMAND_ROOMBA_DRIVE";
    AV_CHANNEL = 0x2100, "COMMAND_AV_CHANNEL";
    AV_VOLUME = 0x2101, "COMMAND_AV_VOLUME";
    AV_SOURCE = 0x2102, "COMMAND_AV_SOURCE";
    CAMERA_PREVIEW = 0x2200, "COMMAND_CAMERA_PREVIEW";
    CAMERA_PHOTO = 0x2201, "COMMAND_CAMERA_PHOTO";
    CAMERA_VIDEO = 0x2202, "COMMAND_CAMERA_VIDEO";
    CAMERA_STREAM = 0x2203, "COMMAND_CAMERA_STREAM";
    LOG = 0x2800, "COMMAND_LOG";
    BUTTON_BINARY = 0x3000, "COMMAND_BUTTON_BINARY";
    BUTTON_MULTILEVEL = 0x3001, "COMMAND_BUTTON_MULTILEVEL";
    BUTTON_ALL = 0x3002, "COMMAND_BUTTON_ALL";
    NOTIFY = 0x3010, "COMMAND_NOTIFY";
    MOTOR = 0x3100, "COMMAND_MOTOR";
    SHUTTER_BINARY = 0x3150, "COMMAND_SHUTTER_BINARY";
    SHUTTER_MULTILEVEL = 0x3151, "COMMAND_SHUTTER_MULTILEVEL";
    SHUTTER_ALL = 0x3152, "COMMAND_SHUTTER_ALL";
    BELL = 0x3155, "COMMAND_BELL";
    SCREEN_DRAW = 0x3200, "COMMAND_SCREEN_DRAW";
    SCREEN_MESSAGE = 0x3201, "COMMAND_SCREEN_MESSAGE";
    SCREEN_CLEAR = 0x3202, "COMMAND_SCREEN_CLEAR";
    BLINK = 0x3203, "COMMAND_BLINK";
    UPDOWN = 0x3204, "COMMAND_UPDOWN";
    DISCOVERY = 0x5000, "COMMAND_DISCOVERY";
}

impl CommandClass {
    /// The original's constant name (`COMMAND_SWITCH_BINARY`), if the code is known.
    pub fn name(self) -> Option<&'static str> {
        COMMAND_CLASSES
            .binary_search_by_key(&self, |(class, _)| *class)
            .ok()
            .map(|at| COMMAND_CLASSES[at].1)
    }

    /// Looks a class up by its constant name, with or without the `COMMAND_` prefix,
    /// case-insensitively (`switch_binary`, `COMMAND_SWITCH_BINARY`).
    pub fn from_name(name: &str) -> Option<CommandClass> {
        let wanted = name.trim().to_ascii_uppercase();
        let wanted = wanted.strip_prefix("COMMAND_").unwrap_or(&wanted);
        COMMAND_CLASSES
            .iter()
            .find(|(_, known)| &known["COMMAND_".len()..] == wanted)
            .map(|(class, _)| *class)
    }
}

impl fmt::Display for CommandClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:04X} {name}", self.0),
            None => write!(f, "0x{:04X}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_sorted() {
        assert_eq!(COMMAND_CLASSES.len(), 131);
        assert!(COMMAND_CLASSES.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn names_and_codes_agree() {
        assert_eq!(CommandClass(0x70).name(), Some("COMMAND_CONFIGURATION"));
        assert_eq!(CommandClass::DISCOVERY.0, 0x5000);
        assert_eq!(
            CommandClass::from_name("network_controller"),
            Some(CommandClass(0x1051))
        );
        assert_eq!(CommandClass(0x1234).name(), None);
        assert_eq!(CommandClass::BLINK.to_string(), "0x3203 COMMAND_BLINK");
    }
}
