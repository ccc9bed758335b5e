//! Integration tests of the `fsatomic` command, run for real: the built
//! binary, real temporary directories on the machine's filesystem, real
//! concurrent processes. One binary for the whole command, one module per
//! area.

#[path = "cli/support.rs"]
mod support;

#[path = "cli/append.rs"]
mod append;
#[path = "cli/check.rs"]
mod check;
#[path = "cli/demo.rs"]
mod demo;
#[path = "cli/history.rs"]
mod history;
#[path = "cli/holes.rs"]
mod holes;
#[path = "cli/lock.rs"]
mod lock;
#[path = "cli/owner.rs"]
mod owner;
#[path = "cli/protocols.rs"]
mod protocols;
#[path = "cli/save_load.rs"]
mod save_load;
#[path = "cli/strace.rs"]
mod strace;
#[path = "cli/update.rs"]
mod update;
#[path = "cli/usage.rs"]
mod usage;
