//! Reading a committed file: never deletes, never repairs, never guesses.
//!
//! A missing file is "absent" (`Ok(None)`), not an error. A file that no
//! commit could have written — empty, cut short, not JSON — is a
//! [`Corrupt`] error naming the file and the byte offset, and the file is
//! left exactly as it was found: it is never taken for empty state and never
//! overwritten behind the caller's back. Readers take no lock and remove
//! nothing, so a reader can never break a writer's commit in flight.

use embedded_io::SeekFrom;

use crate::error::{Corrupt, CorruptKind, IoError, LoadError};
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
    crate::name::validate(name).map_err(|error| LoadError::Name {
        file: crate::name::owned(name),
        error,
    })?;
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

/// Read the file `name` into `buf` and check that it holds exactly one
/// well-formed JSON value; return its length, or `Ok(None)` if absent.
///
/// An empty file is [`CorruptKind::Empty`]; malformed JSON is
/// [`CorruptKind::Json`] at the offset where it breaks.
pub fn read_json<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    let Some(len) = read(dir, name, buf)? else {
        return Ok(None);
    };
    let text = buf.get(..len).unwrap_or_default();
    check_json(name, text)?;
    Ok(Some(len))
}

/// Check that `text`, the content of `file`, is one well-formed JSON value.
pub fn check_json(file: &str, text: &[u8]) -> Result<(), Corrupt> {
    if text.is_empty() {
        return Err(Corrupt::new(file, 0, CorruptKind::Empty));
    }
    json::validate(text).map_err(|e| Corrupt::new(file, e.offset as u64, CorruptKind::Json(e.kind)))
}
