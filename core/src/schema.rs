//! Schema versions of typed documents ([`crate::Store::with_schema`]).
//!
//! A versioned document is kept in an envelope:
//!
//! ```text
//! {
//!   "schema": 2,
//!   "value": { ...the document... }
//! }
//! ```
//!
//! Anything else — a document written before the store had a schema, by a
//! version of the program that had none — is schema 0, the whole document
//! its value. [`crate::Store::open`] brings an older document up to the
//! store's schema with the caller's migration, under the writers' lock,
//! and commits the result keeping the pre-migration document as the
//! previous version ([`crate::history`]); a document of a newer schema than
//! the store knows is [`crate::LoadError::Unsupported`]
//! ([`Unsupported::NewerSchema`]) and is left untouched, so that a
//! downgraded firmware never overwrites what a newer one wrote.

use core::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{LoadError, Unsupported};
use crate::json;

/// The envelope a versioned document is written in.
#[derive(Serialize)]
pub(crate) struct Envelope<'v, T> {
    /// The schema version.
    pub schema: u32,
    /// The document.
    pub value: &'v T,
}

/// The schema version of the document `text` and where its value is:
/// `(0, whole)` for a document that is not an envelope.
pub fn peek(text: &[u8]) -> (u64, Range<usize>) {
    let (mut schema, mut value, mut others) = (None, None, false);
    let parsed = json::for_each_member(text, |key, range| match key {
        b"schema" => {
            schema = text
                .get(range)
                .and_then(|d| core::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u64>().ok());
        }
        b"value" => value = Some(range),
        _ => others = true,
    });
    match (parsed, schema, value, others) {
        (Ok(()), Some(schema), Some(value), false) => (schema, value),
        _ => (0, 0..text.len()),
    }
}

/// A document of an older schema, handed to a migration: its version and
/// its value, as JSON at the front of a buffer whose rest is scratch space.
pub struct Old<'b> {
    /// The schema version it was written with (0: before the store had
    /// one).
    pub schema: u64,
    file: &'b str,
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Old<'b> {
    pub(crate) fn new(schema: u64, file: &'b str, buf: &'b mut [u8], len: usize) -> Self {
        Old {
            schema,
            file,
            buf,
            len,
        }
    }

    /// The old value, as JSON.
    pub fn json(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Decode the old value as the type that schema had.
    pub fn decode<U: DeserializeOwned>(
        &mut self,
    ) -> Result<U, LoadError<core::convert::Infallible>> {
        crate::codec::decode::<U, core::convert::Infallible>(self.file, self.buf, self.len)
    }
}

/// The error of a document whose schema is newer than `known`.
pub(crate) fn newer<E>(file: &str, found: u64, known: u32, text: &[u8]) -> LoadError<E> {
    // The offset of the version number, for the message.
    let mut offset = 0;
    let _ = json::for_each_member(text, |key, range| {
        if key == b"schema" {
            offset = range.start as u64;
        }
    });
    LoadError::Unsupported {
        file: crate::name::owned(file),
        offset,
        what: Unsupported::NewerSchema { found, known },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_and_plain_documents() {
        let doc = b"{\n  \"schema\": 2,\n  \"value\": {\n    \"a\": 1\n  }\n}\n";
        let (v, r) = peek(doc);
        assert_eq!(v, 2);
        assert_eq!(&doc[r], b"{\n    \"a\": 1\n  }");
        let plain = b"{\"schema\": 2, \"value\": 1, \"other\": 3}";
        assert_eq!(peek(plain), (0, 0..plain.len()));
        assert_eq!(peek(b"[1]"), (0, 0..3));
        assert_eq!(peek(b"{\"schema\": \"x\", \"value\": 1}").0, 0);
    }
}
