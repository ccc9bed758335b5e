//! fsatomic for C and Go: `libfsatomic_capi.a` and `libfsatomic_capi.so`,
//! declared by `include/fsatomic.h`, found through `fsatomic.pc`
//! (`boards/capi/pc`).
//!
//! Each function is one call of the `fsatomic` command, without the fork:
//! `fsatomic_save`, `fsatomic_load` into the caller's buffer,
//! `fsatomic_update` with a callback under the writers' lock,
//! `fsatomic_append` to a journaled array, `fsatomic_lock` with a timeout,
//! `fsatomic_check`. Documents are JSON bytes, validated and indented as
//! `fsatomic save` writes them. Every function returns one of the stable
//! codes of [`code`] (0 is success; 1 to 4 are the command's exit codes)
//! and leaves a sentence for `fsatomic_last_error_message`.
//!
//! The operations are safe Rust in `ops`; `unsafe` is only in `ffi`, which
//! turns C pointers into slices and strings and catches every panic.

#![deny(unsafe_code)]
#![deny(missing_docs)]

#[allow(unsafe_code)]
mod ffi;
mod ops;

#[cfg(test)]
mod header_check;

/// The codes every function returns, as `fsatomic.h` defines them. They
/// are stable: a code keeps its number for ever, and 1 to 4 are the
/// `fsatomic` command's exit codes for the same outcomes.
pub mod code {
    /// Success.
    pub const OK: i32 = 0;
    /// The filesystem failed (a missing directory, a permission, `EIO`,
    /// another program changing the directory under the lock).
    pub const IO: i32 = 1;
    /// The caller's mistake: a null pointer, a document that is not JSON,
    /// a mode or protocol out of range, a value appended to a state that
    /// is not an array. Nothing was written.
    pub const INVALID: i32 = 2;
    /// The state does not exist (load, check).
    pub const ABSENT: i32 = 3;
    /// A file is corrupt (torn, empty, bad checksum, not JSON); it was left
    /// untouched.
    pub const CORRUPT: i32 = 4;
    /// The document does not fit the caller's buffer (load: `*len` says
    /// how large it must be) or a slot file.
    pub const TOO_LARGE: i32 = 5;
    /// The name was refused (empty, `/`, `..`, a reserved suffix).
    pub const BAD_NAME: i32 = 6;
    /// Well-formed, but not supported here: JSON nested too deep, or a
    /// whole-document save or update of a journaled array.
    pub const UNSUPPORTED: i32 = 7;
    /// `fsatomic_lock` gave up after its timeout.
    pub const LOCK_TIMEOUT: i32 = 8;
    /// The update callback returned non-zero; nothing was committed.
    pub const CANCELED: i32 = 9;
    /// A bug in fsatomic (a panic, a state it should never reach).
    pub const INTERNAL: i32 = 10;

    /// `fsatomic_save`'s protocol: Replace, or Slots where renaming over a
    /// file is not crash-atomic.
    pub const PROTOCOL_AUTO: i32 = 0;
    /// `fsatomic_save`'s protocol: Replace.
    pub const PROTOCOL_REPLACE: i32 = 1;
    /// `fsatomic_save`'s protocol: Slots.
    pub const PROTOCOL_SLOTS: i32 = 2;

    /// Every constant with its name in `fsatomic.h` (without `FSATOMIC_`).
    pub const ALL: [(&str, i32); 14] = [
        ("OK", OK),
        ("IO", IO),
        ("INVALID", INVALID),
        ("ABSENT", ABSENT),
        ("CORRUPT", CORRUPT),
        ("TOO_LARGE", TOO_LARGE),
        ("BAD_NAME", BAD_NAME),
        ("UNSUPPORTED", UNSUPPORTED),
        ("LOCK_TIMEOUT", LOCK_TIMEOUT),
        ("CANCELED", CANCELED),
        ("INTERNAL", INTERNAL),
        ("PROTOCOL_AUTO", PROTOCOL_AUTO),
        ("PROTOCOL_REPLACE", PROTOCOL_REPLACE),
        ("PROTOCOL_SLOTS", PROTOCOL_SLOTS),
    ];
}
