//! CRC-32C (Castagnoli), the checksum of journal records and slot headers.
//!
//! Table-driven, computed at compile time. CRC-32C is the checksum ext4,
//! btrfs and iSCSI use; it detects every burst error of up to 32 bits and
//! any odd number of flipped bits.
//!
//! Two table sizes, one result. On bare metal (`target_os = "none"`) one
//! 1 KiB table, a byte at a time: flash is what a microcontroller lacks,
//! and its documents are small. Everywhere else "slicing by 8": eight
//! tables (8 KiB of read-only data) and eight bytes per step, about four
//! times faster (64 KiB: 146 µs a byte at a time, measured on the
//! benchmark machine), which is what a Slots commit or load of a large
//! document spends most of its CPU time on. The tests check the two
//! against each other.

const POLY: u32 = 0x82F6_3B78; // reversed 0x1EDC6F41

// Indices are masked to 0..=255 and the table has 256 entries.
#[allow(clippy::indexing_slicing)]
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// `TABLES[k][i]`: the CRC of byte `i` followed by `k` zero bytes, for
/// slicing by 8.
#[cfg(any(test, not(target_os = "none")))]
#[allow(clippy::indexing_slicing)] // indices below 8 and 256
const TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    t[0] = TABLE;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ TABLE[(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// One byte at a time.
#[allow(clippy::indexing_slicing)] // a u8 index into a 256-entry table
fn bytewise(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = TABLE[usize::from(crc as u8 ^ b)] ^ (crc >> 8);
    }
    crc
}

/// Eight bytes at a time, the rest one at a time.
#[cfg(any(test, not(target_os = "none")))]
#[allow(clippy::indexing_slicing)] // u8 indices into 256-entry tables
fn sliced(mut crc: u32, bytes: &[u8]) -> u32 {
    let t = &TABLES;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let lo = crc ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let hi = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
        crc = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xFF) as usize]
            ^ t[2][((hi >> 8) & 0xFF) as usize]
            ^ t[1][((hi >> 16) & 0xFF) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    bytewise(crc, words.remainder())
}

/// A running CRC-32C.
///
/// ```
/// let mut crc = fsatomic::crc::Crc32c::new();
/// crc.update(b"123456789");
/// assert_eq!(crc.finish(), 0xE306_9283);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Crc32c(u32);

impl Crc32c {
    /// A CRC over no bytes yet.
    pub const fn new() -> Crc32c {
        Crc32c(!0)
    }

    /// Feed `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        #[cfg(not(target_os = "none"))]
        {
            self.0 = sliced(self.0, bytes);
        }
        #[cfg(target_os = "none")]
        {
            self.0 = bytewise(self.0, bytes);
        }
    }

    /// The checksum of everything fed so far.
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32c {
    fn default() -> Crc32c {
        Crc32c::new()
    }
}

/// The CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(bytes);
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // RFC 3720, appendix B.4.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let inc: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(crc32c(&inc), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn both_table_sizes_agree() {
        // Every length 0..=80 at every alignment 0..8, and a long run fed
        // in uneven pieces, from a non-trivial running value.
        let data: [u8; 4096] =
            core::array::from_fn(|i| (i as u32).wrapping_mul(2_654_435_761) as u8);
        for start in 0..8 {
            for len in 0..=80 {
                let piece = &data[start..start + len];
                assert_eq!(sliced(!0, piece), bytewise(!0, piece), "{start}+{len}");
                assert_eq!(sliced(0x1234_5678, piece), bytewise(0x1234_5678, piece));
            }
        }
        let mut a = Crc32c::new();
        let mut rest = &data[..];
        let mut step = 1;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at(step.min(rest.len()));
            a.update(head);
            rest = tail;
            step = step * 3 % 67 + 1;
        }
        assert_eq!(a.finish(), !bytewise(!0, &data));
    }
}
