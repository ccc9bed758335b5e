//! The board's [`fsatomic::Dir`]: core's RAM directory
//! ([`fsatomic::ram`]) at this board's capacities, whose files and names
//! keep a live and a durable copy, and the power switch that cuts it
//! ([`fsatomic::ram::Cut`]).
//!
//! Writes take at most [`PAGE`] bytes per call, as a flash driver programs
//! one page at a time, so a commit of a few hundred bytes is several
//! `WriteTemp` steps of the Replace state machine, and a cut can fall
//! between any two of them.

pub use fsatomic::ram::Cut;

/// Most files (inodes) the disk holds, names and lock files included.
pub const MAX_FILES: usize = 8;
/// Largest file, in bytes.
pub const FILE_CAPACITY: usize = 512;
/// Longest name, in bytes (a temporary name of a 30-byte name fits).
pub const NAME_CAPACITY: usize = 64;
/// Most bytes one `write` call takes: one flash page.
pub const PAGE: usize = 64;

/// The whole medium.
pub type Disk = fsatomic::ram::Disk<MAX_FILES, NAME_CAPACITY, FILE_CAPACITY>;
/// The directory handle: a shared reference to the disk.
pub type RamDir<'a> = fsatomic::ram::RamDir<'a, MAX_FILES, NAME_CAPACITY, FILE_CAPACITY>;
/// Errors of the RAM directory.
pub type RamError = embedded_io::ErrorKind;

/// Give a new disk this board's page size. The litmus build breaks the
/// contract on purpose: file flushes report success and keep nothing (see
/// Cargo.toml).
pub fn configure(disk: &mut Disk) {
    disk.set_page(PAGE);
    disk.set_lying_flushes(cfg!(feature = "_litmus-lost-flush"));
}
