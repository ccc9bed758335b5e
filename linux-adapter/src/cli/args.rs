//! A small argument parser: options with and without values, positional
//! arguments, and a command after `--`. No dependency, so the static binary
//! stays small on boards.

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use fsatomic::Mode;

use super::failure::Failure;
use super::target::lossy;

/// An option a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Its spelling, `--mode`.
    pub name: &'static str,
    /// Whether it takes a value (`--mode 0644` or `--mode=0644`).
    pub takes_value: bool,
}

impl Opt {
    /// An option without a value, `--mkdir`.
    pub const fn flag(name: &'static str) -> Opt {
        Opt {
            name,
            takes_value: false,
        }
    }

    /// An option with a value, `--mode 0644`.
    pub const fn with_value(name: &'static str) -> Opt {
        Opt {
            name,
            takes_value: true,
        }
    }
}

/// What a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The command's name, for messages.
    pub command: &'static str,
    /// Its options.
    pub options: &'static [Opt],
    /// Whether `-- CMD [ARG...]` is required.
    pub takes_command: bool,
}

impl Spec {
    /// Exit 2 with `COMMAND: message`, pointing at the command's `--help`.
    pub fn usage(&self, message: impl std::fmt::Display) -> Failure {
        Failure::usage(format!("{}: {message}", self.command), self.command)
    }
}

/// `--timeout SECONDS`: give up waiting for the writers' lock after that
/// long (fractions allowed), with exit code 8.
pub const TIMEOUT_OPTION: Opt = Opt::with_value("--timeout");

/// `-n`: do not wait for the writers' lock at all (`flock -n`); exit code
/// 8 if another writer holds it.
pub const NOWAIT_OPTION: Opt = Opt::flag("-n");

/// Arguments of one command, as parsed.
#[derive(Debug, Default)]
pub struct Parsed {
    /// `--help` or `-h` was given: print the command's help, do nothing.
    pub help: bool,
    /// Positional arguments, in order.
    pub positional: Vec<OsString>,
    values: Vec<(&'static str, OsString)>,
    flags: Vec<&'static str>,
    /// The command after `--` (empty unless the spec takes one).
    pub command: Vec<OsString>,
}

impl Parsed {
    /// The value of option `name`, if given.
    pub fn value(&self, name: &str) -> Option<&OsString> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Whether flag `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    /// Exactly one positional argument (the `PATH`), or a usage error.
    pub fn one_path(&self, spec: &Spec) -> Result<&OsString, Failure> {
        match self.positional.as_slice() {
            [path] => Ok(path),
            [] => Err(spec.usage("missing PATH")),
            [_, extra, ..] => Err(spec.usage(format_args!(
                "unexpected argument {:?} (one PATH only)",
                lossy(extra)
            ))),
        }
    }

    /// The `--mode` value, or `default`.
    pub fn mode(&self, spec: &Spec, default: Mode) -> Result<Mode, Failure> {
        match self.value("--mode") {
            None => Ok(default),
            Some(text) => parse_mode(text).ok_or_else(|| {
                spec.usage(format_args!(
                    "--mode {:?} is not an octal file mode between 0 and 7777 (e.g. 0600, 0644)",
                    lossy(text)
                ))
            }),
        }
    }

    /// The value of the option `name` as whole seconds on a clock
    /// (`--until`, `--now`): `None` if not given, or a usage error.
    pub fn seconds(&self, spec: &Spec, name: &str) -> Result<Option<u64>, Failure> {
        let Some(text) = self.value(name) else {
            return Ok(None);
        };
        text.to_str()
            .and_then(|t| t.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                spec.usage(format_args!(
                    "{name} {:?} is not a whole number of seconds (e.g. $(date +%s))",
                    lossy(text)
                ))
            })
    }

    /// The wait for the writers' lock `--timeout` or `-n` asks for (`None`:
    /// as long as it takes), or a usage error.
    pub fn lock_timeout(&self, spec: &Spec) -> Result<Option<Duration>, Failure> {
        match (self.value("--timeout"), self.flag("-n")) {
            (Some(_), true) => Err(spec.usage("give --timeout or -n, not both")),
            (None, true) => Ok(Some(Duration::ZERO)),
            (None, false) => Ok(None),
            (Some(text), false) => text
                .to_str()
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|s| s.is_finite() && (0.0..=1e9).contains(s))
                .map(|s| Some(Duration::from_secs_f64(s)))
                .ok_or_else(|| {
                    spec.usage(format_args!(
                        "--timeout {:?} is not a number of seconds (e.g. 5, 0.5)",
                        lossy(text)
                    ))
                }),
        }
    }
}

/// Parse `args` (the command name already taken off) against `spec`.
pub fn parse(spec: &Spec, args: impl IntoIterator<Item = OsString>) -> Result<Parsed, Failure> {
    let mut parsed = Parsed::default();
    let mut args = args.into_iter();
    let mut saw_dashes = false;
    while let Some(arg) = args.next() {
        if arg == "--" {
            saw_dashes = true;
            if spec.takes_command {
                parsed.command.extend(args.by_ref());
            } else {
                parsed.positional.extend(args.by_ref());
            }
            break;
        }
        if arg == "--help" || arg == "-h" {
            parsed.help = true;
            continue;
        }
        let Some(text) = arg.to_str().filter(|t| t.starts_with('-') && t.len() > 1) else {
            parsed.positional.push(arg);
            continue;
        };
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (text, None),
        };
        let Some(opt) = spec.options.iter().find(|o| o.name == name) else {
            return Err(spec.usage(format_args!("unknown option {text:?}")));
        };
        if parsed.flags.contains(&opt.name) || parsed.value(opt.name).is_some() {
            return Err(spec.usage(format_args!("{} given twice", opt.name)));
        }
        if opt.takes_value {
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| spec.usage(format_args!("{} needs a value", opt.name)))?,
            };
            parsed.values.push((opt.name, value));
        } else if inline.is_some() {
            return Err(spec.usage(format_args!("{} takes no value", opt.name)));
        } else {
            parsed.flags.push(opt.name);
        }
    }
    if parsed.help {
        return Ok(parsed);
    }
    if spec.takes_command && (!saw_dashes || parsed.command.is_empty()) {
        return Err(
            spec.usage("missing the command to run: put it after '--' (e.g. -- sh -c '...')")
        );
    }
    Ok(parsed)
}

/// An octal mode: `600`, `0600`, `0o600`; at most `7777`.
pub fn parse_mode(text: &OsStr) -> Option<Mode> {
    let text = text.to_str()?;
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    Mode::new(u32::from_str_radix(digits, 8).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        command: "update",
        options: &[Opt::with_value("--mode"), Opt::flag("--mkdir")],
        takes_command: true,
    };

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_anywhere_before_the_dashes_and_the_command_untouched_after() {
        let p = parse(
            &SPEC,
            os(&[
                "--mode=644",
                "f.json",
                "--mkdir",
                "--",
                "sh",
                "--mode",
                "-c",
            ]),
        )
        .unwrap();
        assert_eq!(p.positional, os(&["f.json"]));
        assert_eq!(p.value("--mode"), Some(&OsString::from("644")));
        assert!(p.flag("--mkdir"));
        assert_eq!(p.command, os(&["sh", "--mode", "-c"]));
    }

    #[test]
    fn refuses_unknown_repeated_valueless_and_missing_command() {
        for bad in [
            &["f", "--bogus", "--", "x"][..],
            &["f", "--mkdir", "--mkdir", "--", "x"],
            &["f", "--mkdir=1", "--", "x"],
            &["f", "--mode"],
            &["f"],
            &["f", "--"],
        ] {
            let e = parse(&SPEC, os(bad)).unwrap_err();
            assert_eq!(e.code, 2, "{bad:?}");
        }
    }

    #[test]
    fn modes_are_octal_and_bounded() {
        let m = |t: &str| parse_mode(OsStr::new(t)).map(Mode::bits);
        assert_eq!(m("0644"), Some(0o644));
        assert_eq!(m("600"), Some(0o600));
        assert_eq!(m("0o640"), Some(0o640));
        assert_eq!(m("7777"), Some(0o7777));
        assert_eq!(m("10000"), None);
        assert_eq!(m("0684"), None);
        assert_eq!(m(""), None);
        assert_eq!(m("-1"), None);
    }
}
