//! Moving a whole document between Replace and Slots, and telling which
//! protocol a state is on when such a move was cut short.
//!
//! A state is on exactly one protocol ([`crate::layout`]). Moving it to the
//! other keeps its content and is two steps, each durable before the next:
//!
//! ```text
//!  Replace → Slots:  Slots commit of the document (both slots, flushed)
//!                    ──► remove NAME, flush the directory
//!  Slots → Replace:  Replace commit of the newest slot's document
//!                    ──► remove the older slot, flush the directory
//!                    ──► remove the newer slot, flush the directory
//! ```
//!
//! Between the steps the directory holds `NAME` beside slots. The rule that
//! makes every cut read old or new: **a plain `NAME` beside slots whose
//! newest valid document is byte for byte `NAME` is one state, mid-move**;
//! both forms hold the same document, so a reader may take either, and
//! the next writer finishes the move towards the protocol the filesystem
//! calls for ([`Protocol::Auto`]). The order of the removals keeps the rule
//! true at every cut: the slots are complete before `NAME` goes, `NAME` is
//! durable before any slot goes, and the older slot goes (durably) before
//! the newer, so whatever slot remains is the newest. `NAME` beside slots
//! holding *another* document is nothing fsatomic leaves: it is reported
//! as corrupt and left for a person.

use crate::Mode;
use crate::error::{Corrupt, CorruptKind, IoError, LoadError, StoreError};
use crate::fs::{Dir, Op};
use crate::layout::{self, Files, Role};
use crate::protocol::Protocol;
use crate::{load, replace, slots};

/// What the files of a state say, a move cut short included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// On one protocol.
    On(Protocol),
    /// `NAME` beside slots: a move between Replace and Slots cut short.
    /// `complete`: the slots hold `NAME`'s document; else they hold no
    /// valid document yet (the move to Slots was cut while writing them),
    /// and `NAME` is the state.
    Moving {
        /// Whether the slots hold the document.
        complete: bool,
    },
}

fn classify<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<Found>, LoadError<D::Error>> {
    let files = Files::probe(dir, name)?;
    let mixed = match files.protocol() {
        Ok(found) => return Ok(found.map(Found::On)),
        Err(mixed) => mixed,
    };
    let different = |why| Err(Corrupt::new(name, 0, CorruptKind::Shape(why)).into());
    if mixed.files.journal {
        return different("slot files beside a journal: stored two ways at once");
    }
    let half = buf.len() / 2;
    let (a, b) = buf.split_at_mut(half);
    let Some(p) = load::read(dir, name, a)? else {
        return Ok(Some(Found::On(Protocol::Slots)));
    };
    let slot = match slots::load(dir, name, b) {
        Ok(found) => found,
        // Slots that do not hold a document beside a plain one: the move
        // to Slots was cut while writing them.
        Err(LoadError::Corrupt(_)) => None,
        Err(e) => return Err(e),
    };
    match slot {
        None => Ok(Some(Found::Moving { complete: false })),
        Some(s) if a.get(..p) == b.get(..s) => Ok(Some(Found::Moving { complete: true })),
        Some(_) => {
            different("slot files beside a different plain document: stored two ways at once")
        }
    }
}

/// Which protocol the state `name` is on: `Ok(None)` if it has no file.
/// A move between Replace and Slots that was cut short is one state (see
/// the module's rule): on the protocol [`Protocol::Auto`] picks here when
/// the slots already hold the document (both forms read the same), else on
/// Replace. `NAME` beside slots holding another document, or slots beside
/// a journal, is [`CorruptKind::Shape`]. `buf` is scratch space for the
/// comparison (two documents).
pub fn on_disk<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<Protocol>, LoadError<D::Error>> {
    Ok(match classify(dir, name, buf)? {
        None => None,
        Some(Found::On(p)) => Some(p),
        Some(Found::Moving { complete: true }) => Some(Protocol::Auto.resolve(dir.capabilities())),
        Some(Found::Moving { complete: false }) => Some(Protocol::Replace),
    })
}

/// Under the writers' lock of `name`: move the state to `to` (Replace or
/// Slots, resolved against the directory), keeping its document, or finish
/// a move that was cut short. A state already on `to`, or absent, is left
/// as it is. `buf` must hold the document twice; slot files made get room
/// for `max_document` bytes. Returns the protocol the state is on after.
pub fn convert<D: Dir>(
    dir: &mut D,
    name: &str,
    to: Protocol,
    mode: Mode,
    buf: &mut [u8],
    max_document: usize,
) -> Result<Option<Protocol>, StoreError<D::Error>> {
    let to = to.resolve(dir.capabilities());
    let Some(found) = classify(dir, name, buf)? else {
        return Ok(None);
    };
    match (found, to) {
        (Found::On(Protocol::Journal), _) | (_, Protocol::Journal) => {
            return Err(StoreError::Commit(crate::CommitError::WrongProtocol {
                file: crate::name::owned(name),
                protocol: to,
            }));
        }
        (Found::On(p), to) if p == to => {}
        (Found::On(Protocol::Slots), _) => {
            let len = slots::load(dir, name, buf)?.unwrap_or(0);
            let data = buf.get(..len).unwrap_or_default();
            replace::commit(dir, name, data, mode)?;
            remove_slots(dir, name)?;
        }
        (Found::Moving { .. }, Protocol::Replace) => remove_slots(dir, name)?,
        (Found::On(_) | Found::Moving { complete: false }, _) => {
            let len = load::read(dir, name, buf)?.unwrap_or(0);
            let data = buf.get(..len).unwrap_or_default();
            slots::commit(dir, name, data, mode, max_document)?;
            remove(dir, name, Role::Document)?;
        }
        (Found::Moving { complete: true }, _) => remove(dir, name, Role::Document)?,
    }
    Ok(Some(to))
}

/// Remove the slot files of `name`, the older first and durably, so that
/// a slot that remains is always the newest.
fn remove_slots<D: Dir>(dir: &mut D, name: &str) -> Result<(), IoError<D::Error>> {
    for role in older_first(dir, name)? {
        remove(dir, name, role)?;
    }
    Ok(())
}

/// The slot files of `name` that exist, the older first.
fn older_first<D: Dir>(dir: &mut D, name: &str) -> Result<[Role; 2], IoError<D::Error>> {
    let mut generation = [None, None];
    for (i, g) in generation.iter_mut().enumerate() {
        let file = layout::file_name(name, Role::Slot(i as u8));
        if let Some(mut f) = dir
            .open_read(&file)
            .map_err(|e| IoError::new(Op::Open, &file, e))?
            && let slots::SlotStatus::Valid { generation, .. } =
                slots::inspect(&mut f, &file)?.status
        {
            *g = Some(generation);
        }
    }
    let b_older = match generation {
        [Some(a), Some(b)] => slots::compare_generations(b, a) == Some(core::cmp::Ordering::Less),
        [Some(_), None] => true,
        _ => false,
    };
    Ok(if b_older {
        [Role::Slot(1), Role::Slot(0)]
    } else {
        [Role::Slot(0), Role::Slot(1)]
    })
}

/// Remove the file of `name` with `role` if it exists, and flush the
/// directory so that the removal is durable before the next step.
fn remove<D: Dir>(dir: &mut D, name: &str, role: Role) -> Result<(), IoError<D::Error>> {
    let file = layout::file_name(name, role);
    if dir
        .exists(&file)
        .map_err(|e| IoError::new(Op::Open, &file, e))?
    {
        dir.remove(&file)
            .map_err(|e| IoError::new(Op::Remove, &file, e))?;
        dir.sync_dir()
            .map_err(|e| IoError::new(Op::SyncDir, &file, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::test_dir::MemDir;

    #[test]
    fn a_state_moves_both_ways_and_a_move_cut_short_reads_as_one_state() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 1024];
        let doc = b"{\n  \"n\": 1\n}\n";
        replace::commit(&mut dir, "m.json", doc, Mode::PRIVATE).unwrap();
        let to = convert(
            &mut dir,
            "m.json",
            Protocol::Slots,
            Mode::PRIVATE,
            &mut buf,
            256,
        );
        assert_eq!(to.unwrap(), Some(Protocol::Slots));
        assert_eq!(dir.get("m.json"), None);
        assert_eq!(
            on_disk(&mut dir, "m.json", &mut buf).unwrap(),
            Some(Protocol::Slots)
        );
        let n = slots::load(&mut dir, "m.json", &mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], doc);
        // A move back cut after NAME was written: NAME beside the slots,
        // the same document — one state, on what Auto picks here.
        dir.set("m.json", doc);
        assert_eq!(
            on_disk(&mut dir, "m.json", &mut buf).unwrap(),
            Some(Protocol::Replace)
        );
        // Beside a different document it is nothing fsatomic leaves.
        dir.set("m.json", b"{}\n");
        assert!(matches!(
            on_disk(&mut dir, "m.json", &mut buf),
            Err(LoadError::Corrupt(_))
        ));
        dir.set("m.json", doc);
        let to = convert(
            &mut dir,
            "m.json",
            Protocol::Replace,
            Mode::PRIVATE,
            &mut buf,
            256,
        );
        assert_eq!(to.unwrap(), Some(Protocol::Replace));
        assert_eq!(dir.get("m.json").unwrap(), doc);
        assert_eq!(dir.get("m.json.a"), None);
        assert_eq!(dir.get("m.json.b"), None);
    }
}
