//! The `fsatomic` command: dispatch to one module per command ([`save`],
//! [`load`], ...), over shared ones ([`args`], [`stored`], [`failure`], ...).

use std::ffi::OsString;

pub mod append;
pub mod args;
pub mod check;
pub mod child;
pub mod demo;
pub mod document;
pub mod failure;
pub mod help;
pub mod load;
pub mod lock;
pub mod owner;
pub mod receipt;
pub mod save;
pub mod stored;
pub mod target;
pub mod tentative;
pub mod update;

use failure::Failure;

/// Run the tool with `args` (the program name already taken off).
pub fn run(args: Vec<OsString>) -> Result<(), Failure> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Err(Failure::usage("missing command", ""));
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str().unwrap_or("") {
        "save" => save::main(rest),
        "load" => load::main(rest),
        "append" => append::main(rest),
        "update" => update::main(rest),
        "lock" => lock::main(rest),
        "confirm" => tentative::main(rest, true),
        "rollback" => tentative::main(rest, false),
        "check" => check::main(rest),
        "demo" => demo::main(rest),
        "--help" | "-h" | "help" => match rest.first() {
            None => help::print(""),
            Some(topic) => {
                let topic = topic.to_str().unwrap_or("");
                if help::text(topic).is_none() || topic.is_empty() {
                    return Err(Failure::usage(
                        format!("no help for unknown command {topic:?}"),
                        "",
                    ));
                }
                help::print(topic)
            }
        },
        "--version" | "-V" | "version" => {
            failure::out(format_args!("fsatomic {}", fsatomic::VERSION))
        }
        _ => Err(Failure::usage(
            format!("unknown command {:?}", command.to_string_lossy()),
            "",
        )),
    }
}
