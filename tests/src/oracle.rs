//! The one oracle every protocol is checked against, and the
//! self-describing values scenarios commit.
//!
//! After a power cut — for a reader that runs before recovery, and again
//! after recovery:
//!
//! - once a commit was acknowledged, `load` gives its value (or a later
//!   one that was in flight);
//! - while it was in flight, the old value or the new one;
//! - never bytes that no commit wrote (torn), never [`Failure::Corrupt`],
//!   never "absent" once a value existed;
//! - at most [`crate::protocol::Protocol::max_leftovers`] temporary files
//!   after recovery;
//! - no lock outlives its owner: recovery can take the lock, and nothing
//!   is held once it returned;
//! - and the directory still works: a new commit after recovery succeeds
//!   and loads back.

use std::fmt;

use crate::protocol::{Failure, Loaded};

/// The oracle's verdict: `Ok(())` if allowed, else what went wrong.
pub type Judgement = Result<(), (ViolationKind, String)>;

/// A committed value: indented JSON `{"v": N, "pad": "..."}` with a
/// trailing newline, exactly `len` bytes long (at least 32), whose padding
/// differs for every `n`, so that any mix of two values is detectably
/// neither.
pub fn value(n: u64, len: usize) -> Vec<u8> {
    let head = format!("{{\n  \"v\": {n},\n  \"pad\": \"");
    let tail = "\"\n}\n";
    let pad = len.saturating_sub(head.len() + tail.len()).max(1);
    let mut out = head.into_bytes();
    for i in 0..pad as u64 {
        out.push(b'a' + ((i.wrapping_mul(7).wrapping_add(n.wrapping_mul(11))) % 26) as u8);
    }
    out.extend_from_slice(tail.as_bytes());
    out
}

/// The `v` of a value made by [`value`], if `bytes` starts like one.
pub fn value_number(bytes: &[u8]) -> Option<u64> {
    let rest = bytes.strip_prefix(b"{\n  \"v\": ")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// What the oracle allows at one crash point: indices into the scenario's
/// values, `None` standing for "no value" (before the first commit).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Expect {
    /// The last acknowledged value (`None`: nothing acknowledged yet).
    pub acked: Option<usize>,
    /// The value whose commit was running, if one was.
    pub in_flight: Option<usize>,
    /// The value in flight was committed tentatively and its confirmation
    /// had not started: a reader may see it, but recovery must roll it
    /// back to the acknowledged one.
    pub tentative: bool,
}

impl Expect {
    /// Whether `found` (an index, or `None` for absent) is allowed.
    pub fn allows(&self, found: Option<usize>) -> bool {
        found == self.acked || (found.is_some() && found == self.in_flight)
    }

    /// What is allowed once recovery ran: a tentative value is gone.
    pub fn after_recovery(&self) -> Expect {
        Expect {
            in_flight: self.in_flight.filter(|_| !self.tentative),
            tentative: false,
            ..self.clone()
        }
    }
}

/// Judge a previous value: with `current` (an index, or `None`) loaded,
/// the previous value must be the one committed right before it (`None`
/// before the second value) — or, where `may_be_lost`, none.
pub fn judge_previous(
    values: &[Vec<u8>],
    current: Option<usize>,
    may_be_lost: bool,
    loaded: &Loaded,
) -> Judgement {
    let want = current.and_then(|k| k.checked_sub(1));
    let found = match loaded {
        Err(e) => return Err((ViolationKind::of(e), format!("load previous: {e}"))),
        Ok(None) => None,
        Ok(Some(bytes)) => match values.iter().position(|v| v == bytes) {
            Some(k) => Some(k),
            None => {
                return Err((
                    ViolationKind::Torn,
                    format!(
                        "the previous value is {} bytes no commit wrote",
                        bytes.len()
                    ),
                ));
            }
        },
    };
    if found == want || (found.is_none() && may_be_lost) {
        return Ok(());
    }
    let show = |k: Option<usize>| k.map_or("none".to_owned(), |k| format!("value #{k}"));
    Err((
        ViolationKind::WrongPrevious,
        format!(
            "the previous value is {} with {} current; expected {}",
            show(found),
            show(current),
            show(want)
        ),
    ))
}

/// Which value `loaded` is (an index, `None` for absent), if it is one.
pub fn which(values: &[Vec<u8>], loaded: &Loaded) -> Option<Option<usize>> {
    match loaded {
        Ok(None) => Some(None),
        Ok(Some(bytes)) => values.iter().position(|v| v == bytes).map(Some),
        Err(_) => None,
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.acked {
            Some(k) => write!(f, "value #{k}")?,
            None => f.write_str("no value")?,
        }
        if let Some(k) = self.in_flight {
            let how = if self.tentative {
                "tentative, until recovery"
            } else {
                "in flight"
            };
            write!(f, " or value #{k} ({how})")?;
        }
        Ok(())
    }
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// `load` reported the file corrupt.
    Corrupt,
    /// `load` gave bytes that no commit wrote.
    Torn,
    /// `load` gave no value although one existed.
    Absent,
    /// `load` gave an older value than the acknowledged one (or a value
    /// whose commit had not started).
    Stale,
    /// `recover` or `load` failed otherwise (I/O, logic bug).
    Failed,
    /// Too many temporary files were left.
    Leftovers,
    /// A lock was held after its owner returned, or could not be taken.
    Lock,
    /// A commit after recovery failed or did not load back.
    NotUsable,
    /// The previous value is not the one committed before the current.
    WrongPrevious,
    /// The scenario itself failed without any power cut.
    Scenario,
}

impl ViolationKind {
    /// The kind of a failed call: corrupt, or failed otherwise.
    pub fn of(failure: &Failure) -> ViolationKind {
        match failure {
            Failure::Corrupt(_) => ViolationKind::Corrupt,
            _ => ViolationKind::Failed,
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ViolationKind::Corrupt => "corrupt",
            ViolationKind::Torn => "torn",
            ViolationKind::Absent => "absent",
            ViolationKind::Stale => "stale",
            ViolationKind::Failed => "failed",
            ViolationKind::Leftovers => "leftovers",
            ViolationKind::Lock => "lock",
            ViolationKind::NotUsable => "not-usable",
            ViolationKind::WrongPrevious => "wrong-previous",
            ViolationKind::Scenario => "scenario",
        })
    }
}

/// Judge one `load` result against `expect`, given the scenario's values.
pub fn judge(values: &[Vec<u8>], expect: &Expect, loaded: &Loaded) -> Judgement {
    let found = match loaded {
        Err(e) => {
            let what = match e {
                Failure::Corrupt(c) => c.to_string(),
                e => e.to_string(),
            };
            return Err((
                ViolationKind::of(e),
                format!("load: {what}; expected {expect}"),
            ));
        }
        Ok(None) => None,
        Ok(Some(bytes)) => match values.iter().position(|v| v == bytes) {
            Some(k) => Some(k),
            None => {
                let what = match value_number(bytes) {
                    Some(n) => format!("a mix starting like value v={n}"),
                    None => "unrecognisable bytes".to_owned(),
                };
                return Err((
                    ViolationKind::Torn,
                    format!(
                        "load gave {} bytes, {what}: {:?}; expected {expect}",
                        bytes.len(),
                        String::from_utf8_lossy(&bytes[..bytes.len().min(48)])
                    ),
                ));
            }
        },
    };
    if expect.allows(found) {
        return Ok(());
    }
    match found {
        None => Err((
            ViolationKind::Absent,
            format!("load gave no value; expected {expect}"),
        )),
        Some(k) => Err((
            ViolationKind::Stale,
            format!("load gave value #{k}; expected {expect}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_asked_length_and_differ() {
        let a = value(1, 300);
        let b = value(2, 300);
        assert_eq!(a.len(), 300);
        assert_eq!(b.len(), 300);
        assert_ne!(a, b);
        assert!(fsatomic::json::validate(&a).is_ok());
        assert_eq!(value_number(&a), Some(1));
        assert_eq!(value_number(&value(12345, 10)), Some(12345));
        // Every padding byte differs, so any mix of the two that takes a
        // padding byte from each is neither.
        let pad = a.windows(8).position(|w| w == b"\"pad\": \"").unwrap() + 8;
        for i in pad..a.len() - 4 {
            assert_ne!(a[i], b[i], "byte {i}");
        }
        let mut mix = a[..150].to_vec();
        mix.extend_from_slice(&b[150..]);
        assert!(mix != a && mix != b);
    }

    #[test]
    fn judge_classifies() {
        let values = vec![value(1, 64), value(2, 64)];
        let x = |acked, in_flight| Expect {
            acked,
            in_flight,
            tentative: false,
        };
        let e = x(Some(0), Some(1));
        assert!(judge(&values, &e, &Ok(Some(values[0].clone()))).is_ok());
        assert!(judge(&values, &e, &Ok(Some(values[1].clone()))).is_ok());
        assert_eq!(
            judge(&values, &e, &Ok(None)).unwrap_err().0,
            ViolationKind::Absent
        );
        let mut torn = values[0].clone();
        torn[40] ^= 1;
        assert_eq!(
            judge(&values, &e, &Ok(Some(torn))).unwrap_err().0,
            ViolationKind::Torn
        );
        let stale = judge(&values, &x(Some(1), None), &Ok(Some(values[0].clone())));
        assert_eq!(stale.unwrap_err().0, ViolationKind::Stale);
        let c = fsatomic::Corrupt::new("x", 0, fsatomic::CorruptKind::Empty);
        assert_eq!(
            judge(&values, &e, &Err(Failure::Corrupt(c))).unwrap_err().0,
            ViolationKind::Corrupt
        );
        assert!(judge(&values, &x(None, Some(0)), &Ok(None)).is_ok());
    }
}
