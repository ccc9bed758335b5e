//! Typed values to and from the bytes on disk: serde + `serde-json-core`
//! into the caller's buffer, indented by [`crate::json`].
//!
//! Encoding happens entirely in the buffer, before any file is touched: a
//! document larger than the buffer is an [`EncodeError`] and the disk never
//! sees it. Decoding first checks the bytes with [`crate::json::validate`],
//! so that a corrupt file is reported with the byte offset where it breaks.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Corrupt, CorruptKind, EncodeError, LoadError};
use crate::json;

/// Encode `value` as indented JSON with a trailing newline into `buf`, and
/// return the number of bytes used.
///
/// Only `buf` is used: the compact form is written first, moved to the end
/// of the buffer, and re-indented towards the front.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct FirstBoot { done: bool }
/// let mut buf = [0u8; 64];
/// let n = fsatomic::codec::encode(&FirstBoot { done: true }, &mut buf).unwrap();
/// assert_eq!(&buf[..n], b"{\n  \"done\": true\n}\n");
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let capacity = buf.len();
    let compact =
        serde_json_core::to_slice(value, buf).map_err(|_| EncodeError::BufferTooSmall {
            needed: None,
            capacity,
        })?;
    json::pretty_from_front(buf, compact).map_err(|e| match e {
        json::PrettyError::BufferTooSmall { needed, capacity } => EncodeError::BufferTooSmall {
            needed: Some(needed),
            capacity,
        },
        json::PrettyError::Json(e) => EncodeError::NotJson(e),
    })
}

/// Decode the `len` bytes at the start of `buf`, read from the file `file`.
///
/// The rest of `buf` (after `len`) is scratch space for unescaping strings;
/// give it at least the length of the longest string.
pub fn decode<T: DeserializeOwned, E>(
    file: &str,
    buf: &mut [u8],
    len: usize,
) -> Result<T, LoadError<E>> {
    let capacity = buf.len();
    let (text, scratch) = buf.split_at_mut_checked(len).ok_or(LoadError::TooLarge {
        file: crate::name::owned(file),
        size: len as u64,
        capacity,
    })?;
    crate::load::check_document(file, text)?;
    match serde_json_core::from_slice_escaped::<T>(text, scratch) {
        Ok((value, _)) => Ok(value),
        Err(serde_json_core::de::Error::EscapedStringIsTooLong) => Err(LoadError::TooLarge {
            file: crate::name::owned(file),
            size: len as u64,
            capacity,
        }),
        Err(e) => Err(Corrupt::new(file, 0, CorruptKind::Shape(shape_error(&e))).into()),
    }
}

fn shape_error(e: &serde_json_core::de::Error) -> &'static str {
    use serde_json_core::de::Error as E;
    match e {
        E::InvalidType => "a value has the wrong type",
        E::InvalidNumber => "a number does not fit its field",
        E::CustomError => "a field is missing, unknown or out of range",
        E::InvalidUnicodeCodePoint => "a string holds an invalid code point",
        E::AnyIsUnsupported => "the type needs self-describing input",
        _ => "the document does not match the stored type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct User {
        name: heapless::String<32>,
        uid: u32,
        admin: bool,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Users {
        users: heapless::Vec<User, 4>,
    }

    fn sample() -> Users {
        let mut users = Users::default();
        for (name, uid) in [("root \"admin\"", 0), ("nas", 1000)] {
            let mut n = heapless::String::new();
            n.push_str(name).unwrap();
            users
                .users
                .push(User {
                    name: n,
                    uid,
                    admin: uid == 0,
                })
                .unwrap();
        }
        users
    }

    #[test]
    fn round_trip_through_indented_json() {
        let mut buf = [0u8; 512];
        let n = encode(&sample(), &mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            text.starts_with("{\n  \"users\": [\n    {\n      \"name\": \"root \\\"admin\\\"\"")
        );
        assert!(text.ends_with("}\n"));
        let back: Users = decode::<_, ()>("users.json", &mut buf, n).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn too_small_buffer_is_an_error_with_the_needed_size() {
        let mut big = [0u8; 512];
        let n = encode(&sample(), &mut big).unwrap();
        let mut exact = [0u8; 512];
        assert_eq!(encode(&sample(), &mut exact[..n]), Ok(n));
        assert_eq!(
            encode(&sample(), &mut exact[..n - 1]),
            Err(EncodeError::BufferTooSmall {
                needed: Some(n),
                capacity: n - 1
            })
        );
        assert_eq!(
            encode(&sample(), &mut exact[..10]),
            Err(EncodeError::BufferTooSmall {
                needed: None,
                capacity: 10
            })
        );
    }

    #[test]
    fn corrupt_input_names_file_and_offset() {
        let mut buf = [0u8; 64];
        let e = decode::<Users, ()>("users.json", &mut buf, 0).unwrap_err();
        assert_eq!(
            e,
            LoadError::Corrupt(Corrupt::new("users.json", 0, CorruptKind::Empty))
        );
        buf[..11].copy_from_slice(b"{\"users\":[{");
        let e = decode::<Users, ()>("users.json", &mut buf, 11).unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::Corrupt(Corrupt {
                    offset: 11,
                    kind: CorruptKind::Json(_),
                    ..
                })
            ),
            "{e:?}"
        );
        buf[..13].copy_from_slice(b"{\"users\":42}\n");
        let e = decode::<Users, ()>("users.json", &mut buf, 13).unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::Corrupt(Corrupt {
                    kind: CorruptKind::Shape(_),
                    ..
                })
            ),
            "{e:?}"
        );
    }
}
