//! Reading a committed file: never deletes, never repairs, never guesses.
//!
//! A missing file is "absent" (`Ok(None)`), not an error. A file that no
//! commit could have written — empty, cut short, not JSON — is a
//! [`Corrupt`] error naming the file and the byte offset, and the file is
//! left exactly as it was found: it is never taken for empty state and never
//! overwritten behind the caller's back. Readers take no lock and remove
//! nothing, so a reader can never break a writer's commit in flight.
//!
//! Valid JSON that this crate does not support (nested deeper than
//! [`json::MAX_DEPTH`], written by another tool) is not corrupt: it is
//! [`LoadError::Unsupported`], and left as it was found too.

use embedded_io::SeekFrom;

use crate::error::{Corrupt, CorruptKind, IoError, LoadError, Unsupported};
use crate::fs::{Dir, Op};
use crate::json;

/// Read the whole file `name` into the front of `buf` and return its
/// length, or `Ok(None)` if there is no such file. Checks nothing about the
/// content.
///
/// A file larger than `buf` is [`LoadError::TooLarge`], with its size.
pub fn read<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    crate::name::checked::<LoadError<_>>(name)?;
    let Some(mut file) = dir
        .open_read(name)
        .map_err(|e| IoError::new(Op::Open, name, e))?
    else {
        return Ok(None);
    };
    read_to_end(&mut file, name, buf).map(Some)
}

/// Read from the current position of `file` to its end into `buf`.
pub(crate) fn read_to_end<F: crate::fs::File>(
    file: &mut F,
    name: &str,
    buf: &mut [u8],
) -> Result<usize, LoadError<F::Error>> {
    let mut len = 0;
    loop {
        let Some(rest) = buf.get_mut(len..) else {
            return Err(LoadError::LogicBug("read past the end of the buffer"));
        };
        if rest.is_empty() {
            let mut probe = [0u8; 1];
            let more = file
                .read(&mut probe)
                .map_err(|e| IoError::new(Op::Read, name, e).at(len as u64))?;
            if more == 0 {
                return Ok(len);
            }
            let size = file
                .seek(SeekFrom::End(0))
                .map_err(|e| IoError::new(Op::Seek, name, e))?;
            return Err(LoadError::TooLarge {
                file: crate::name::owned(name),
                size,
                capacity: buf.len(),
            });
        }
        let n = file
            .read(rest)
            .map_err(|e| IoError::new(Op::Read, name, e).at(len as u64))?;
        if n == 0 {
            return Ok(len);
        }
        len += n;
    }
}

/// Read the current version of the document `name` — its tentative version
/// while one waits ([`crate::history`]), else the file `name` — into `buf`
/// and check that it holds exactly one well-formed JSON value; return its
/// length, or `Ok(None)` if absent.
///
/// An empty file is [`CorruptKind::Empty`]; malformed JSON is
/// [`CorruptKind::Json`] at the offset where it breaks; JSON nested deeper
/// than [`json::MAX_DEPTH`] is [`LoadError::Unsupported`].
pub fn read_json<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    let Some((len, tentative)) = crate::history::read_current_file(dir, name, buf)? else {
        return Ok(None);
    };
    let text = buf.get(..len).unwrap_or_default();
    if tentative {
        check_document(
            &crate::layout::file_name(name, crate::layout::Role::Tentative),
            text,
        )?;
    } else {
        check_document(name, text)?;
    }
    Ok(Some(len))
}

/// Check that `text`, the content of `file`, is one well-formed JSON value
/// that this crate supports: like [`check_json`], but JSON nested deeper
/// than [`json::MAX_DEPTH`] is [`LoadError::Unsupported`], not corrupt.
pub fn check_document<E>(file: &str, text: &[u8]) -> Result<(), LoadError<E>> {
    if text.is_empty() {
        return Err(Corrupt::new(file, 0, CorruptKind::Empty).into());
    }
    json::validate(text).map_err(|e| json_error(file, e.offset as u64, e.kind))
}

/// A JSON error of `kind` at byte `offset` of `file`, as a load error:
/// [`LoadError::Unsupported`] for a depth beyond [`json::MAX_DEPTH`],
/// [`LoadError::Corrupt`] with [`CorruptKind::Json`] for everything else.
pub fn json_error<E>(file: &str, offset: u64, kind: json::JsonErrorKind) -> LoadError<E> {
    match Unsupported::from_json(kind) {
        Some(what) => LoadError::Unsupported {
            file: crate::name::owned(file),
            offset,
            what,
        },
        None => Corrupt::new(file, offset, CorruptKind::Json(kind)).into(),
    }
}

/// Check that `text`, the content of `file`, is one well-formed JSON value.
///
/// Every failure is a [`Corrupt`], including a depth beyond
/// [`json::MAX_DEPTH`] ([`json::JsonErrorKind::TooDeep`]), which is not
/// corruption; [`check_document`] keeps that case apart.
pub fn check_json(file: &str, text: &[u8]) -> Result<(), Corrupt> {
    if text.is_empty() {
        return Err(Corrupt::new(file, 0, CorruptKind::Empty));
    }
    json::validate(text).map_err(|e| Corrupt::new(file, e.offset as u64, CorruptKind::Json(e.kind)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Unsupported;

    #[test]
    fn too_deep_is_unsupported_not_corrupt() {
        // Valid JSON, one level too deep: [[[ ... [0] ... ]]].
        let mut deep = [b'['; 2 * (json::MAX_DEPTH + 1) + 1];
        deep[json::MAX_DEPTH + 1] = b'0';
        deep[json::MAX_DEPTH + 2..].fill(b']');
        let e = check_document::<()>("deep.json", &deep).unwrap_err();
        assert_eq!(
            e,
            LoadError::Unsupported {
                file: crate::name::owned("deep.json"),
                offset: json::MAX_DEPTH as u64,
                what: Unsupported::TooDeep,
            }
        );
        assert!(!matches!(e, LoadError::Corrupt(_)));
        // Malformed JSON stays corrupt, an empty file too.
        assert!(matches!(
            check_document::<()>("a.json", b"[1,]"),
            Err(LoadError::Corrupt(_))
        ));
        assert!(matches!(
            check_document::<()>("a.json", b""),
            Err(LoadError::Corrupt(Corrupt {
                kind: CorruptKind::Empty,
                ..
            }))
        ));
        assert!(check_document::<()>("a.json", b"[[1]]").is_ok());
    }
}
