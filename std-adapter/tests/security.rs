//! Security against the std adapter: names refused before I/O; symbolic and hard
//! links planted at the target, at temporary names and at the lock file;
//! stale world-readable temporary files.
#![cfg(unix)]

mod common;
use common::Std;

fsatomic_testkit::conformance_tests!(Std: security);
