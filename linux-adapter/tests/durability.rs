//! Durability against the Linux adapter: exactly two flushes per commit in order,
//! injected `EIO`s, corrupt files reported with their offset and left alone.
#![cfg(unix)]

mod common;
use common::Linux;

fsatomic_testkit::conformance_tests!(Linux: durability);
