//! Little-endian fields and whole reads: the few byte-level helpers the
//! binary formats (journal, slots) share. Out-of-range offsets read as zero
//! and write nothing: the formats check lengths before they get here, and a
//! bug must not become a panic.

use crate::fs::File;

/// The little-endian `u32` at `at`.
pub(crate) fn u32_le(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    if let Some(src) = b.get(at..at + 4) {
        x.copy_from_slice(src);
    }
    u32::from_le_bytes(x)
}

/// The little-endian `u64` at `at`.
pub(crate) fn u64_le(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(src) = b.get(at..at + 8) {
        x.copy_from_slice(src);
    }
    u64::from_le_bytes(x)
}

/// Copy `bytes` into `dst` at `at`.
pub(crate) fn put(dst: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = dst.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

/// Read into `buf` until it is full or the file ends; the count read.
pub(crate) fn read_full<F: File>(file: &mut F, buf: &mut [u8]) -> Result<usize, F::Error> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        let got = file.read(rest)?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}
