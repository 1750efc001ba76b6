//! Signed requests: an operator's share that a stranger cannot take. A controller reads only so
//! many requests a second from anyone (a flood with a new `reply_hadd` each defeats any share
//! by name); a request signed with the network's key is read beside them, from a budget of its
//! own, and has in-flight slots of its own.
//!
//! A signed request carries one more field, `signed`: 78 characters, the time of signing (ms
//! since the Unix epoch, 13 decimal digits), a `.`, and 64 lower-case hex digits, the
//! HMAC-SHA256 of the topic, a zero byte, and the payload as sent with those 64 digits written
//! as `0`s. It is checked on the bytes, before anything is decoded (a flood of forged ones
//! costs a search and a hash each), in JSON (`"signed":"…"`) or MessagePack (the key, then a
//! str8 of 78 bytes). It is believed within the window of its stamp (30 s: keep the clocks in
//! NTP time), and once.
//!
//! Sans-IO: times are given, nothing is read or sent here.

use std::collections::HashMap;
use std::ops::Range;

use hmac::{Hmac, Mac};
use memchr::memmem;
use sha2::Sha256;

use super::{hex, unhex, ControlKey, Refusal, Signature, Verified, CLEAN_AT};
use crate::codec::Codec;
use crate::fields::Data;
use crate::message::Message;
use crate::request::Request;
use crate::topic::Topic;

/// The field holding a request's stamp and signature.
pub const REQUEST_SIGNATURE: &str = "signed";
/// The stamp's digits.
const STAMP_DIGITS: usize = 13;
/// The signature's hex digits.
const MAC_DIGITS: usize = 64;
/// The field's value: stamp, `.`, signature.
const SIGNED_LEN: usize = STAMP_DIGITS + 1 + MAC_DIGITS;
/// The largest request whose signature is checked, bytes: a signed request is an operator's
/// get or set, and a flood of large forged ones must cost little each. A larger one is read as
/// unsigned.
pub const SIGNED_MAX_PAYLOAD: usize = 16 << 10;
/// The field's key and the value's opening, in JSON.
const JSON_MARKER: &[u8] = b"\"signed\":\"";
/// The field's key (fixstr of 6) and the value's header (str8 of 78), in MessagePack.
const MSGPACK_MARKER: &[u8] = b"\xa6signed\xd9\x4e";

/// Where the `signed` field's value lies in `payload`, if it has one.
fn signed_range(payload: &[u8]) -> Option<Range<usize>> {
    [JSON_MARKER, MSGPACK_MARKER]
        .into_iter()
        .find_map(|marker| {
            let start = memmem::find(payload, marker)? + marker.len();
            let end = start + SIGNED_LEN;
            (end <= payload.len()).then_some(start..end)
        })
}

/// The MAC of `payload` on `topic`, the signature's digits at `digits` read as `0`s, to be
/// finalized or verified.
fn request_mac(
    key: &ControlKey,
    topic: &str,
    payload: &[u8],
    digits: Range<usize>,
) -> Hmac<Sha256> {
    let mut mac = key.mac.clone();
    mac.update(topic.as_bytes());
    mac.update(&[0]);
    mac.update(&payload[..digits.start]);
    mac.update(&[b'0'; MAC_DIGITS]);
    mac.update(&payload[digits.end..]);
    mac
}

/// The payload of `request` for `topic`, signed with `key` at `stamp_ms`.
pub fn sign_request(
    key: &ControlKey,
    topic: &Topic,
    mut request: Request,
    codec: Codec,
    stamp_ms: u64,
) -> Vec<u8> {
    // Thirteen digits hold every time until the year 2286.
    let stamp = stamp_ms.min(9_999_999_999_999);
    let placeholder = format!("{stamp:013}.{}", "0".repeat(MAC_DIGITS));
    request
        .extra
        .insert(REQUEST_SIGNATURE.into(), Data::from(placeholder));
    let mut payload = Message::Request(request).encode(codec);
    let Some(range) = signed_range(&payload) else {
        return payload;
    };
    let digits = range.start + STAMP_DIGITS + 1..range.end;
    let mac = request_mac(key, &topic.to_string(), &payload, digits.clone()).finalize();
    payload[digits].copy_from_slice(hex(&mac.into_bytes()).as_bytes());
    payload
}

/// A controller's check of signed requests: its key, and the signatures believed within the
/// window.
#[derive(Debug, Clone)]
pub struct SignedRequests {
    key: ControlKey,
    window_ms: u64,
    seen: HashMap<Signature, u64>,
    clean_at: usize,
}

impl SignedRequests {
    /// Checks with `key`, believing stamps at most `window_ms` from now.
    pub fn new(key: ControlKey, window_ms: u64) -> SignedRequests {
        SignedRequests {
            key,
            window_ms,
            seen: HashMap::new(),
            clean_at: CLEAN_AT,
        }
    }

    /// Whether the request `payload` on `topic` is signed with the key, fresh, and new at
    /// `now_ms`. It is not remembered yet: [`SignedRequests::remember`] it once it is read.
    pub fn check(&self, topic: &str, payload: &[u8], now_ms: u64) -> Result<Verified, Refusal> {
        if payload.len() > SIGNED_MAX_PAYLOAD {
            return Err(Refusal::Unsigned);
        }
        let range = signed_range(payload).ok_or(Refusal::Unsigned)?;
        let value = &payload[range.clone()];
        let (stamp, rest) = value.split_at(STAMP_DIGITS);
        let stamp_ms = stamp
            .iter()
            .try_fold(0u64, |ms, digit| {
                digit
                    .is_ascii_digit()
                    .then(|| ms * 10 + u64::from(digit - b'0'))
            })
            .ok_or(Refusal::Malformed)?;
        let (dot, digits) = rest.split_at(1);
        if dot != b"." {
            return Err(Refusal::Malformed);
        }
        let signature = std::str::from_utf8(digits)
            .ok()
            .and_then(unhex)
            .ok_or(Refusal::Malformed)?;
        let digits_at = range.start + STAMP_DIGITS + 1..range.end;
        request_mac(&self.key, topic, payload, digits_at)
            .verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;
        let off_ms = stamp_ms.abs_diff(now_ms);
        if off_ms > self.window_ms {
            return Err(Refusal::Stale { off_ms });
        }
        if self.seen.contains_key(&signature) {
            return Err(Refusal::Replayed);
        }
        Ok(Verified {
            stamp_ms,
            signature,
        })
    }

    /// Remembers a request read, so that it is not read again.
    pub fn remember(&mut self, verified: Verified, now_ms: u64) {
        if self.seen.len() >= self.clean_at {
            let window = self.window_ms;
            self.seen
                .retain(|_, stamp| stamp.abs_diff(now_ms) <= window);
            self.clean_at = (2 * self.seen.len()).max(CLEAN_AT);
        }
        self.seen.insert(verified.signature, verified.stamp_ms);
    }

    /// How many signatures are remembered.
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command_class::CommandClass;
    use crate::hadd::Hadd;
    use crate::model::Genre;

    const NOW_MS: u64 = 1_764_900_000_000;
    const WINDOW_MS: u64 = 30_000;

    fn key(secret: &str) -> ControlKey {
        ControlKey::from_secret(secret.as_bytes()).expect("a long enough secret")
    }

    fn topic() -> Topic {
        Topic::NodeRequest(Hadd::new(220, 1))
    }

    fn get() -> Request {
        let mut request =
            Request::get(Hadd::new(220, 1), "name", Genre::Config, CommandClass(0x70));
        request.reply_hadd = Some(Hadd::new(9999, 1));
        request.request_id = Some("probe-1".into());
        request
    }

    fn signed(codec: Codec, stamp_ms: u64) -> Vec<u8> {
        sign_request(
            &key("the network's secret"),
            &topic(),
            get(),
            codec,
            stamp_ms,
        )
    }

    fn checker() -> SignedRequests {
        SignedRequests::new(key("the network's secret"), WINDOW_MS)
    }

    #[test]
    fn a_signed_request_is_believed_in_either_codec_and_still_reads_as_the_request() {
        for codec in [Codec::Json, Codec::MessagePack] {
            let payload = signed(codec, NOW_MS);
            let verified = checker()
                .check(&topic().to_string(), &payload, NOW_MS + 1_000)
                .unwrap_or_else(|refusal| panic!("{codec}: {refusal}"));
            assert_eq!(verified.stamp_ms, NOW_MS, "{codec}");
            let Message::Request(read) = Message::decode(&topic(), &payload, codec).unwrap() else {
                panic!("{codec}: not a request");
            };
            assert_eq!(read.request_id.as_deref(), Some("probe-1"), "{codec}");
            let field = read.extra.get(REQUEST_SIGNATURE).and_then(Data::as_str);
            assert_eq!(field.map(str::len), Some(SIGNED_LEN), "{codec}");
        }
    }

    #[test]
    fn a_changed_byte_another_topic_or_another_key_is_a_bad_signature() {
        let payload = signed(Codec::Json, NOW_MS);
        let text = String::from_utf8(payload.clone()).unwrap();
        let changed = text.replace("\"name\"", "\"nane\"");
        assert_ne!(changed, text);
        let check = |topic: &str, payload: &[u8], checker: &SignedRequests| {
            checker.check(topic, payload, NOW_MS).unwrap_err()
        };
        let here = topic().to_string();
        assert_eq!(
            check(&here, changed.as_bytes(), &checker()),
            Refusal::BadSignature
        );
        assert_eq!(
            check("/nodes/0220/0002/request", &payload, &checker()),
            Refusal::BadSignature
        );
        let other = SignedRequests::new(key("another network's secret"), WINDOW_MS);
        assert_eq!(check(&here, &payload, &other), Refusal::BadSignature);
        // The stamp is signed too.
        let restamped = text.replacen(&NOW_MS.to_string(), &(NOW_MS + 1).to_string(), 1);
        assert_eq!(
            check(&here, restamped.as_bytes(), &checker()),
            Refusal::BadSignature
        );
    }

    #[test]
    fn a_stale_stamp_either_way_is_refused_and_the_window_is_inclusive() {
        let payload = signed(Codec::Json, NOW_MS);
        let here = topic().to_string();
        let checker = checker();
        assert!(checker.check(&here, &payload, NOW_MS + WINDOW_MS).is_ok());
        assert!(checker.check(&here, &payload, NOW_MS - WINDOW_MS).is_ok());
        assert_eq!(
            checker.check(&here, &payload, NOW_MS + WINDOW_MS + 1),
            Err(Refusal::Stale {
                off_ms: WINDOW_MS + 1
            })
        );
        assert_eq!(
            checker.check(&here, &payload, NOW_MS - WINDOW_MS - 1),
            Err(Refusal::Stale {
                off_ms: WINDOW_MS + 1
            })
        );
    }

    #[test]
    fn a_request_is_believed_once_and_in_no_other_spelling() {
        let payload = signed(Codec::Json, NOW_MS);
        let here = topic().to_string();
        let mut checker = checker();
        let verified = checker.check(&here, &payload, NOW_MS).unwrap();
        assert!(
            checker.check(&here, &payload, NOW_MS).is_ok(),
            "checked, not yet remembered"
        );
        checker.remember(verified, NOW_MS);
        assert_eq!(
            checker.check(&here, &payload, NOW_MS),
            Err(Refusal::Replayed)
        );
        // The same signature in capitals is not another one: it is no signature.
        let text = String::from_utf8(payload).unwrap();
        let at = text.find("\"signed\":\"").unwrap() + JSON_MARKER.len() + STAMP_DIGITS + 1;
        let upper = format!(
            "{}{}{}",
            &text[..at],
            text[at..at + MAC_DIGITS].to_ascii_uppercase(),
            &text[at + MAC_DIGITS..]
        );
        assert_ne!(upper, text, "the signature has letters");
        assert_eq!(
            checker.check(&here, upper.as_bytes(), NOW_MS),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn unsigned_short_or_badly_written_fields_are_told_apart() {
        let here = topic().to_string();
        let checker = checker();
        let unsigned = Message::Request(get()).encode(Codec::Json);
        assert_eq!(
            checker.check(&here, &unsigned, NOW_MS),
            Err(Refusal::Unsigned)
        );
        let short = br#"{"op":"get","signed":"1764900000000.00"}"#;
        assert_eq!(checker.check(&here, short, NOW_MS), Err(Refusal::Unsigned));
        let mut large = get();
        large.data = Data::from("x".repeat(SIGNED_MAX_PAYLOAD));
        let large = sign_request(
            &key("the network's secret"),
            &topic(),
            large,
            Codec::Json,
            NOW_MS,
        );
        assert_eq!(checker.check(&here, &large, NOW_MS), Err(Refusal::Unsigned));
        // A payload of exactly the limit is checked.
        let of_length = |characters: usize| {
            let mut request = get();
            request.data = Data::from("x".repeat(characters));
            sign_request(
                &key("the network's secret"),
                &topic(),
                request,
                Codec::Json,
                NOW_MS,
            )
        };
        let shorter = SIGNED_MAX_PAYLOAD - 400;
        let exactly = of_length(shorter + SIGNED_MAX_PAYLOAD - of_length(shorter).len());
        assert_eq!(exactly.len(), SIGNED_MAX_PAYLOAD);
        assert!(checker.check(&here, &exactly, NOW_MS).is_ok());
        let stamp_not_digits =
            format!(r#"{{"signed":"17649000000x0.{}"}}"#, "0".repeat(MAC_DIGITS));
        let no_dot = format!(r#"{{"signed":"1764900000000-{}"}}"#, "0".repeat(MAC_DIGITS));
        let not_hex = format!(r#"{{"signed":"1764900000000.{}"}}"#, "g".repeat(MAC_DIGITS));
        for payload in [stamp_not_digits, no_dot, not_hex] {
            assert_eq!(
                checker.check(&here, payload.as_bytes(), NOW_MS),
                Err(Refusal::Malformed),
                "{payload}"
            );
        }
    }

    #[test]
    fn the_memory_of_signatures_keeps_the_window_and_forgets_the_rest() {
        let here = topic().to_string();
        let signer = key("the network's secret");
        let mut checker = checker();
        let mut read = |id: usize, stamp_ms: u64, now_ms: u64| {
            let mut request = get();
            request.request_id = Some(format!("probe-{id}"));
            let payload = sign_request(&signer, &topic(), request, Codec::Json, stamp_ms);
            let verified = checker.check(&here, &payload, now_ms).unwrap();
            checker.remember(verified, now_ms);
            checker.remembered()
        };
        for id in 0..CLEAN_AT {
            read(id, NOW_MS, NOW_MS);
        }
        // Full, but every one still within the window: all kept.
        assert_eq!(
            read(CLEAN_AT, NOW_MS + WINDOW_MS, NOW_MS + WINDOW_MS),
            CLEAN_AT + 1
        );
        // The next clean-up at twice what was kept: the first ones, past their window now,
        // are still remembered until then (the clean-up's cost is spread).
        let later = NOW_MS + WINDOW_MS + 1;
        assert_eq!(read(CLEAN_AT + 1, later, later), CLEAN_AT + 2);
        assert_eq!(read(CLEAN_AT + 2, later, later), CLEAN_AT + 3);
        for id in CLEAN_AT + 3..2 * CLEAN_AT {
            read(id, later, later);
        }
        // There: only the later ones are kept.
        assert_eq!(read(2 * CLEAN_AT, later, later), CLEAN_AT + 1);
    }
}
