//! The conformance suite's trait-level and protocol checks against the std adapter:
//! every `Dir`/`File` method, Replace, `Store`, recovery.
#![cfg(unix)]

mod common;
use common::Std;

fsatomic_testkit::conformance_tests!(Std: fs_ops, protocol);
