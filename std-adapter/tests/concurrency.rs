//! Concurrency against the std adapter: two writers (threads, then processes)
//! updating one counter 2 × 200 times end at 400; readers in a tight loop
//! (threads and a process) never break a writer; a lock dies with its
//! process.
#![cfg(unix)]

mod common;
use common::Std;

fsatomic_testkit::conformance_tests!(Std: concurrency);
