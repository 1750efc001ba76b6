//! MessagePack read as far as our data model goes, to say what did not fit: `bin` and `ext`
//! read as null, map keys that are not text read as their text, and the first such field
//! named. Used only once the strict reading failed, to answer a request with a 400 that names
//! the field (and to find where to answer it).

use std::cell::RefCell;
use std::fmt;
use std::io::Cursor;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::fields::{child_path, Data};

/// A payload's tree, read leniently.
pub(super) struct Lenient {
    pub tree: Data,
    /// The first field that did not fit, and why (`None`: everything fitted).
    pub unfit: Option<String>,
}

/// Reads `payload`, or `None` when it is no MessagePack at all.
pub(super) fn read(payload: &[u8], max_depth: usize) -> Option<Lenient> {
    let unfit = RefCell::new(None);
    let mut decoder = rmp_serde::Deserializer::new(Cursor::new(payload));
    decoder.set_max_depth(max_depth);
    let seed = Seed {
        path: String::new(),
        unfit: &unfit,
    };
    let tree = seed.deserialize(&mut decoder).ok()?;
    (decoder.get_ref().position() == payload.len() as u64).then(|| Lenient {
        tree,
        unfit: unfit.into_inner(),
    })
}

struct Seed<'a> {
    path: String,
    unfit: &'a RefCell<Option<String>>,
}

impl Seed<'_> {
    fn note(&self, what: &str) {
        let mut unfit = self.unfit.borrow_mut();
        if unfit.is_none() {
            let path = if self.path.is_empty() {
                "(payload)"
            } else {
                &self.path
            };
            *unfit = Some(format!("field {path}: {what}"));
        }
    }

    fn child(&self, path: String) -> Seed<'_> {
        Seed {
            path,
            unfit: self.unfit,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Data;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Data, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack value")
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Data, E> {
        Ok(Data::from(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Data, E> {
        Ok(Data::from(number))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Data, E> {
        Ok(Data::from(number))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Data, E> {
        Ok(Data::from(number))
    }

    fn visit_str<E>(self, text: &str) -> Result<Data, E> {
        Ok(Data::from(text))
    }

    fn visit_unit<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_none<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Data, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<Data, E> {
        self.note("binary data (MessagePack bin) is not accepted: send text or numbers");
        Ok(Data::Null)
    }

    /// MessagePack's `ext`.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, ext: D) -> Result<Data, D::Error> {
        IgnoredAny::deserialize(ext)?;
        self.note("a MessagePack ext type is not accepted");
        Ok(Data::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Data, A::Error> {
        let mut tree = Vec::new();
        while let Some(item) =
            items.next_element_seed(self.child(format!("{}[{}]", self.path, tree.len())))?
        {
            tree.push(item);
        }
        Ok(Data::Array(tree))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<Data, A::Error> {
        let mut tree = serde_json::Map::new();
        while let Some(key) = fields.next_key_seed(KeySeed)? {
            let text = match key {
                Key::Text(text) => text,
                Key::Other(text) => {
                    self.note(&format!(
                        "a map key that is not text ({text}): keys must be strings"
                    ));
                    text
                }
            };
            let value = fields.next_value_seed(self.child(child_path(&self.path, &text)))?;
            tree.insert(text, value);
        }
        Ok(Data::Object(tree))
    }
}

/// A map key: text, or something else shown as text.
enum Key {
    Text(String),
    Other(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E>(self, text: &str) -> Result<Key, E> {
        Ok(Key::Text(text.to_owned()))
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Key, E> {
        Ok(Key::Other(flag.to_string()))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Key, E> {
        Ok(Key::Other(number.to_string()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Key, E> {
        Ok(Key::Other(number.to_string()))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Key, E> {
        Ok(Key::Other(number.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Key, E> {
        Ok(Key::Other("nil".into()))
    }

    fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Key, E> {
        Ok(Key::Other(format!("{} bytes of bin", bytes.len())))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, ext: D) -> Result<Key, D::Error> {
        IgnoredAny::deserialize(ext)?;
        Ok(Key::Other("an ext".into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Key, A::Error> {
        while items.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Key::Other("an array".into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<Key, A::Error> {
        while fields.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Key::Other("a map".into()))
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::Codec;
    use serde_json::json;

    /// `{"a": <value>, "b": 1}` in MessagePack.
    fn packed(value: &[u8]) -> Vec<u8> {
        let mut payload = vec![0x82, 0xa1, b'a'];
        payload.extend_from_slice(value);
        payload.extend_from_slice(&[0xa1, b'b', 0x01]);
        payload
    }

    #[test]
    fn what_does_not_fit_is_named_and_the_rest_is_read() {
        let cases: [(&[u8], &str); 4] = [
            (
                &[0xc4, 0x01, 0xff],
                "field a: binary data (MessagePack bin)",
            ),
            (
                &[0xc7, 0x02, 0x05, 0x00, 0x00],
                "field a: a MessagePack ext type",
            ),
            (
                &[0x81, 0xcc, 0xc8, 0x01],
                "field a: a map key that is not text (200)",
            ),
            (&[0x92, 0x01, 0xc4, 0x00], "field a[1]: binary data"),
        ];
        for (value, named) in cases {
            let payload = packed(value);
            let err = Codec::MessagePack.decode_tree(&payload).unwrap_err();
            assert!(
                err.to_string().contains(named),
                "{err} does not name {named}"
            );
            let tree = Codec::MessagePack.decode_tree_leniently(&payload).unwrap();
            assert_eq!(tree["b"], json!(1), "{named}");
        }
    }

    /// What fits is read as it is beside what does not (a request's `reply_hadd` and
    /// `request_id` are found that way).
    #[test]
    fn beside_what_does_not_fit_the_rest_is_read_whole() {
        // {"s": "0002/0000", "t": true, "i": -5, "f": 1.5, "n": nil, "x": bin}
        let mut payload = vec![0x86, 0xa1, b's', 0xa9];
        payload.extend_from_slice(b"0002/0000");
        payload.extend_from_slice(&[0xa1, b't', 0xc3, 0xa1, b'i', 0xfb, 0xa1, b'f', 0xcb]);
        payload.extend_from_slice(&1.5f64.to_be_bytes());
        payload.extend_from_slice(&[0xa1, b'n', 0xc0, 0xa1, b'x', 0xc4, 0x01, 0x00]);
        assert!(Codec::MessagePack.decode_tree(&payload).is_err());
        assert_eq!(
            Codec::MessagePack.decode_tree_leniently(&payload).unwrap(),
            json!({"s": "0002/0000", "t": true, "i": -5, "f": 1.5, "n": null, "x": null})
        );
    }

    #[test]
    fn what_fits_is_read_the_same_and_garbage_stays_refused() {
        let payload = packed(&[0x93, 0xc0, 0xc3, 0xa1, b'x']);
        let strict = Codec::MessagePack.decode_tree(&payload).unwrap();
        assert_eq!(strict, json!({"a": [null, true, "x"], "b": 1}));
        assert_eq!(
            Codec::MessagePack.decode_tree_leniently(&payload).unwrap(),
            strict
        );
        for garbage in [&[0xc1][..], &[0x82, 0xa1], &[0x81, 0xa1, b'a', 0x01, 0x02]] {
            assert!(Codec::MessagePack.decode_tree_leniently(garbage).is_err());
            assert!(Codec::MessagePack.decode_tree(garbage).is_err());
        }
    }
}
