//! The two payload codecs over one data model: Janitoo JSON (the original's) and MessagePack.
//!
//! Both decode to a tree first ([`Data`]); the messages read their fields from that tree, so the
//! tolerance and the error messages are the same whatever the codec.

use std::fmt;
use std::io::Cursor;

use serde::Deserialize;

use crate::error::{ProtocolError, Result};
use crate::fields::Data;

mod lenient;

/// Deepest nesting accepted in a payload (serde_json's own limit is 128 too).
const MAX_DEPTH: usize = 128;

/// A payload encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// UTF-8 JSON, as the original: tolerant on input, canonical (compact, sorted keys) on output.
    #[default]
    Json,
    /// MessagePack (maps with string keys), for smaller payloads between janitoo-rs processes.
    MessagePack,
}

impl Codec {
    /// The codec's name, as in errors.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "JSON",
            Codec::MessagePack => "MessagePack",
        }
    }

    /// Parses a payload into a tree.
    pub fn decode_tree(self, payload: &[u8]) -> Result<Data> {
        let malformed = |reason: String| ProtocolError::Malformed {
            codec: self.name(),
            reason,
        };
        match self {
            Codec::Json => {
                serde_json::from_slice(payload).map_err(|err| malformed(err.to_string()))
            }
            Codec::MessagePack => {
                let mut decoder = rmp_serde::Deserializer::new(Cursor::new(payload));
                decoder.set_max_depth(MAX_DEPTH);
                let tree = Data::deserialize(&mut decoder).map_err(|err| {
                    // What did not fit our data model, named, when that is what failed.
                    match lenient::read(payload, MAX_DEPTH).and_then(|lenient| lenient.unfit) {
                        Some(unfit) => malformed(unfit),
                        None => malformed(err.to_string()),
                    }
                })?;
                let used = decoder.get_ref().position();
                if used != payload.len() as u64 {
                    return Err(malformed(format!(
                        "{} bytes left after the message",
                        payload.len() as u64 - used
                    )));
                }
                Ok(tree)
            }
        }
    }

    /// Parses a payload into a tree as far as it goes: MessagePack's `bin` and `ext` read as
    /// null, and map keys that are not text as their text (to find where to answer a request
    /// that [`Codec::decode_tree`] refuses). JSON is read as by [`Codec::decode_tree`].
    pub fn decode_tree_leniently(self, payload: &[u8]) -> Result<Data> {
        match self {
            Codec::Json => self.decode_tree(payload),
            Codec::MessagePack => self.decode_tree(payload).or_else(|err| {
                lenient::read(payload, MAX_DEPTH)
                    .map(|lenient| lenient.tree)
                    .ok_or(err)
            }),
        }
    }

    /// Writes a tree.
    pub fn encode_tree(self, tree: &Data) -> Vec<u8> {
        match self {
            // Neither can fail: a tree has string keys and finite numbers only.
            Codec::Json => serde_json::to_vec(tree).unwrap_or_default(),
            Codec::MessagePack => rmp_serde::to_vec(tree).unwrap_or_default(),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
