//! Security against the Linux adapter: names refused before I/O; symbolic and hard
//! links planted at the target, at temporary names and at the lock file;
//! stale world-readable temporary files.
#![cfg(unix)]

mod common;
use common::Linux;

fsatomic_testkit::conformance_tests!(Linux: security);
