//! Exact modes under umask 000 and 077 against the Linux adapter. Its own binary with
//! a single test: the umask is process-wide, and the test sets it only in
//! child processes of its own.
#![cfg(unix)]

mod common;
use common::Linux;

fsatomic_testkit::conformance_tests!(Linux: umask);
