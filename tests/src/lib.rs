//! The fsatomic test kit: everything that proves the protocols.
//!
//! - [`conformance`]: one suite of behaviour every [`fsatomic::Dir`]
//!   adapter must pass (run against the Linux and std adapters).
//! - [`wrap`]: wrapping directories that count flushes and inject faults.
//! - [`sim`]: the crash-model filesystem (durable state apart from a log of
//!   unflushed micro-operations).
//! - [`profile`]: what each filesystem family may leave after a power cut
//!   (`posix-worst`, `ext4-ordered`, `log-structured`, `fat`, `jffs2`), and
//!   the space of crash states of one crash point.
//! - [`explorer`]: enumerates crash points and crash states of a scenario
//!   and checks them against one oracle.
//! - [`protocol`]: the commit protocols behind one trait, so that one
//!   explorer and one [`oracle`] cover them all.
//! - [`mutate`]: wrappers that skip or reorder flushes, to prove that the
//!   explorer notices.
//! - [`powercut`]: random operation sequences with several power cuts,
//!   checked against a `HashMap` model (the fuzz target's driver).
//! - [`rng`]: the seeded generator behind every random choice.
//! - [`runner`]: spawning target binaries, through qemu-user on the boards.

pub mod conformance;
pub mod explorer;
pub mod mutate;
pub mod nor;
pub mod oracle;
pub mod powercut;
pub mod profile;
pub mod protocol;
pub mod rng;
pub mod runner;
pub mod shipped;
pub mod sim;
pub mod wrap;
