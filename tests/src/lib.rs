//! The fsatomic test kit: everything that proves the protocols.
//!
//! - [`conformance`]: one suite of behaviour every [`fsatomic::Dir`]
//!   adapter must pass (run against the Linux and std adapters).
//! - [`wrap`]: wrapping directories that count flushes and inject faults.
//! - [`sim`]: the crash-model filesystem (durable state apart from a log of
//!   unflushed micro-operations).
//! - [`explorer`]: enumerates crash points and crash states of a scenario
//!   and checks them against one oracle.

pub mod conformance;
pub mod explorer;
pub mod sim;
pub mod wrap;
