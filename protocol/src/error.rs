//! The one error type of the protocol crate.
//!
//! Decoding is pure: whatever the variant, nothing was changed anywhere; the caller keeps the
//! state it had and may report the error (its text names what was wrong) and go on.

use thiserror::Error;

/// Everything that can be wrong with a HADD, a topic or a payload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A text that should be a HADD (`cccc/nnnn`) is not one.
    #[error("invalid HADD {text:?}: {reason}")]
    InvalidHadd {
        /// The text as received.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A topic that is not part of the Janitoo grammar.
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The topic as received.
        topic: String,
    },
    /// A topic of a known family whose variable part is wrong (a bad HADD, an empty uuid...).
    #[error("invalid topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic as received.
        topic: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload is not JSON (or MessagePack) at all, or not the shape a message needs.
    #[error("malformed {codec} payload: {reason}")]
    Malformed {
        /// The codec that was asked to decode it.
        codec: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },
    /// A field that the message needs is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The path of the field, e.g. `data.1048/0000.name.0.uuid`.
        field: String,
    },
    /// A field is present but its value is not acceptable.
    #[error("field `{field}`: expected {expected}, found {found}")]
    InvalidField {
        /// The path of the field, e.g. `genre` or `data.1048/0002.load.1.index`.
        field: String,
        /// What the field must hold.
        expected: &'static str,
        /// What it held, abbreviated.
        found: String,
    },
}

impl ProtocolError {
    /// The path of the offending field, for the errors that concern one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ProtocolError::MissingField { field } | ProtocolError::InvalidField { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
