//! The conformance suite's trait-level and protocol checks against the Linux adapter:
//! every `Dir`/`File` method, Replace, `Store`, recovery.
#![cfg(unix)]

mod common;
use common::Linux;

fsatomic_testkit::conformance_tests!(Linux: fs_ops, protocol);
