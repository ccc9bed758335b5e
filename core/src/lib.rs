//! Crash-safe persistence for appliance firmware: a power cut at any instant
//! leaves every file at its old or its new content.
//!
//! ```
//! use fsatomic::{Dir, Mode, Store, StoreError};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct FirstBoot { done: bool }
//!
//! fn finish_setup<D: Dir>(dir: &mut D) -> Result<(), StoreError<D::Error>> {
//!     let store: Store<FirstBoot> = Store::new("firstboot.json", Mode::PRIVATE);
//!     let mut buf = [0u8; 128];
//!     if store.load(dir, &mut buf)?.is_some_and(|s| s.done) {
//!         return Ok(()); // absent is not an error; corrupt is, and is left alone
//!     }
//!     store.save(dir, &mut buf, &FirstBoot { done: true }) // durable on return
//! }
//! ```
//!
//! On a microcontroller with no filesystem, two sectors of NOR flash keep
//! a settings struct the same way (feature `nor`, module `fsatomic::nor`):
//!
//! ```
//! # #[cfg(feature = "nor")]
//! # fn demo<F: embedded_storage::nor_flash::NorFlash>(flash: F)
//! #     -> Result<(), fsatomic::Error<fsatomic::nor::Flash<F::Error>>> {
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Settings { volume: u8, muted: bool }
//!
//! // `flash`: any embedded_storage::nor_flash::NorFlash (the HAL's driver).
//! let mut store = fsatomic::nor::NorSlots::new(flash, 0x3e000, 4096)?; // 2 × 4 KiB
//! let mut buf = [0u8; 128];
//! let mut s: Settings = store.load_value(&mut buf)?.unwrap_or_default();
//! s.volume += 1;
//! store.save(&mut buf, &s)?; // durable on return; a power cut keeps old or new
//! # Ok(()) }
//! ```
//!
//! # Layers
//!
//! From the bottom up:
//!
//! 1. [`fs`]: the filesystem as the protocols see it — one directory held
//!    open ([`Dir`]) and files in it ([`File`]), every method documenting
//!    what a power cut during the call may leave. Adapters implement it:
//!    `fsatomic-linux` (rustix, for Linux boards), `fsatomic-std` (desktops),
//!    a RAM directory on a bare-metal board, the crash-model filesystem of
//!    the test kit.
//! 2. The commit protocols, each one explicit state machine (`enum State`,
//!    one transition function, `step()` and `run()`), so the same code runs
//!    blocking, cooperatively, or under a crash explorer that cuts power
//!    between any two steps:
//!    - [`replace`]: temp file, flush, rename, flush directory — two
//!      barriers per commit. The default.
//!    - [`journal`]: a snapshot plus framed records — one barrier per
//!      append, whatever the length of the history.
//!    - [`slots`]: two preallocated slot files overwritten in place — one
//!      barrier per commit, and safe where rename is not (FAT).
//!
//!    [`protocol`] picks Replace or Slots from what the filesystem
//!    guarantees; [`layout`] is the protocol model: which files each
//!    protocol owns for a state, which protocol a state is on, which
//!    entries are orphans.
//! 3. [`load`] and [`recover`]: reading never deletes or repairs; a corrupt
//!    file is an error with its byte offset; orphaned temporary files are
//!    swept only under the writers' [`lock`].
//! 4. [`json`] and [`codec`]: a no-alloc JSON validator and re-indenter, and
//!    serde through `serde-json-core` into caller buffers.
//! 5. [`Store`]: a typed document with `load`, `save` and `update`;
//!    [`JournalStore`]: a typed state with `open`, `append` and `compact`.
//! 6. [`history`] and [`schema`]: what a state keeps besides its current
//!    version — the previous one ([`Store::load_previous`]), a tentative
//!    one until confirmed ([`Store::save_tentative`], [`Store::confirm`],
//!    rolled back by [`recover::recover`] at boot) — and schema versions
//!    migrated on [`Store::open`]:
//!
//! ```
//! # fn demo<D: fsatomic::Dir>(dir: &mut D) -> Result<(), fsatomic::StoreError<D::Error>> {
//! use fsatomic::{Mode, Store};
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Net { address: u32 }
//!
//! let net: Store<Net> = Store::new("net.json", Mode::PRIVATE).with_previous();
//! let mut buf = [0u8; 128];
//! net.save_tentative(dir, &mut buf, &Net { address: 0x0a00_0063 })?;
//! // ...reachable? Confirm; a reboot before this rolls it back.
//! net.confirm(dir)?;
//! let before = net.load_previous(dir, &mut buf)?; // the version it replaced
//! # let _ = before; Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - A commit that returned `Ok` survives a power cut.
//! - A power cut before that leaves the old content or the new, never a mix,
//!   never an empty or missing file (on filesystems with crash-atomic
//!   rename; see [`Capabilities::atomic_replace`]).
//! - A file never exists with permissions wider than asked, whatever the
//!   umask; no symbolic or hard link planted at any name the library uses
//!   redirects a write.
//! - Writers of one file exclude each other; readers never disturb them.
//!
//! The crate is `#![no_std]`, allocates nothing, forbids `unsafe`, and does
//! not panic on bad input or full buffers: every such case is an error.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

#[cfg(feature = "std")]
extern crate std;

mod bytes;
mod log;
#[cfg(test)]
use ram::test as test_dir;

pub mod codec;
pub mod convert;
pub mod crc;
pub mod error;
pub mod fs;
#[cfg(feature = "std")]
pub mod group;
pub mod history;
pub mod journal;
pub mod json;
pub mod layout;
pub mod load;
pub mod lock;
pub mod machine;
pub mod name;
#[cfg(feature = "nor")]
pub mod nor;
pub mod protocol;
#[cfg(any(test, feature = "ram"))]
pub mod ram;
pub mod recover;
pub mod replace;
pub mod schema;
pub mod slots;
pub mod store;

pub use error::{
    CommitError, Corrupt, CorruptKind, EncodeError, Error, IoError, LoadError, RecoverError,
    StoreError,
};
pub use fs::{Capabilities, Dir, File, Mode, Op, Owner};
pub use protocol::Protocol;
pub use store::{JournalStore, Store};

/// The crate's version, for `--version` output and reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
