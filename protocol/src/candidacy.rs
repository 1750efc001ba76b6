//! A network controller's candidacy: the system value `network_controller` it publishes every
//! interval on `/values/system/<hadd>/network_controller`.
//!
//! The original's value is a list (`primary` or `secondary`, the controller's standing); we
//! add `role`, `priority` (its rank in the election) and `epoch` (the highest it has seen), as
//! fields the original ignores. A value without `role` is an original network controller: it
//! is shown, but not ranked.

use crate::command_class::CommandClass;
use crate::election::{Rank, Role};
use crate::fields::Data;
use crate::hadd::Hadd;
use crate::message::Message;
use crate::model::{Genre, ValueType};
use crate::topic::Topic;
use crate::value::{ValueDescriptor, ValuePublication};

/// The uuid of the candidacy value.
pub const CANDIDACY_UUID: &str = "network_controller";

/// What a network controller says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidacy {
    /// The controller.
    pub hadd: Hadd,
    /// Its rank; `None` for an original network controller, which does not tell it.
    pub rank: Option<Rank>,
    /// Whether it says it is primary.
    pub primary: bool,
    /// The highest epoch it has seen (0 when it does not say).
    pub epoch: u64,
}

impl Candidacy {
    /// Reads a candidacy from a publication on `topic`; `None` when it is not one.
    pub fn from_message(topic: &Topic, message: &Message) -> Option<Candidacy> {
        let (Topic::Value { hadd, uuid, .. }, Message::Value(ValuePublication::Single(value))) =
            (topic, message)
        else {
            return None;
        };
        (uuid == CANDIDACY_UUID).then(|| Candidacy::from_value(*hadd, value))
    }

    /// Reads the candidacy of `hadd` from its value.
    pub fn from_value(hadd: Hadd, value: &ValueDescriptor) -> Candidacy {
        let extra = |key: &str| value.extra.get(key);
        let rank = extra("role").and_then(Data::as_str).map(|role| Rank {
            role: Role::parse(role).unwrap_or(Role::Auto),
            priority: extra("priority")
                .and_then(Data::as_u64)
                .map_or(0, |priority| u8::try_from(priority).unwrap_or(u8::MAX)),
        });
        Candidacy {
            hadd,
            rank,
            primary: value.data.as_str() == Some("primary"),
            epoch: extra("epoch").and_then(Data::as_u64).unwrap_or(0),
        }
    }

    /// The publication: topic and message.
    pub fn to_publication(&self) -> (Topic, Message) {
        let mut value = ValueDescriptor::new(
            CANDIDACY_UUID,
            Genre::System,
            CommandClass::NETWORK_CONTROLLER,
        );
        value.hadd = Some(self.hadd);
        value.value_type = Some(ValueType::List);
        value.list_items = Some(vec!["primary".into(), "secondary".into()]);
        value.label = Some("Network controller".into());
        value.is_readonly = Some(true);
        value.data = Data::from(self.standing());
        if let Some(rank) = self.rank {
            value
                .extra
                .insert("role".into(), Data::from(rank.role.as_str()));
            value
                .extra
                .insert("priority".into(), Data::from(rank.priority));
        }
        value.extra.insert("epoch".into(), Data::from(self.epoch));
        let topic = Topic::Value {
            genre: Genre::System,
            hadd: self.hadd,
            uuid: CANDIDACY_UUID.into(),
        };
        (
            topic,
            Message::Value(ValuePublication::Single(Box::new(value))),
        )
    }

    /// `primary` or `secondary`, as the original's list value.
    pub fn standing(&self) -> &'static str {
        if self.primary {
            "primary"
        } else {
            "secondary"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    #[test]
    fn a_candidacy_survives_the_wire() {
        let candidacy = Candidacy {
            hadd: Hadd::new(2, 0),
            rank: Some(Rank {
                role: Role::Secondary,
                priority: 5,
            }),
            primary: true,
            epoch: 0x3_0002,
        };
        let (topic, message) = candidacy.to_publication();
        let payload = message.encode(Codec::Json);
        let decoded = Message::decode(&topic, &payload, Codec::Json).unwrap();
        assert_eq!(Candidacy::from_message(&topic, &decoded), Some(candidacy));
    }

    #[test]
    fn an_original_network_controller_is_shown_but_not_ranked() {
        let (topic, message) = Message::decode_on(
            "/values/system/0001/0000/network_controller",
            br#"{"uuid":"network_controller","genre":4,"cmd_class":4177,"data":"primary","hadd":"0001/0000"}"#,
            Codec::Json,
        )
        .unwrap();
        let candidacy = Candidacy::from_message(&topic, &message).unwrap();
        assert_eq!(
            (candidacy.rank, candidacy.primary, candidacy.epoch),
            (None, true, 0)
        );
    }
}
