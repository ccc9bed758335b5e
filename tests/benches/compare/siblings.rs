//! The cost of a commit beside many unrelated files: `Store::save` of the
//! 200-byte users document in an empty directory and in one that holds
//! 10,000 other files, interleaved round by round so that both see the
//! same machine. A commit that lists the directory (the orphan sweep of
//! old) costs O(files); the target is a ratio ≤ 1.1.

use std::fs;
use std::path::Path;
use std::time::Instant;

use fsatomic::{Mode, Store};
use fsatomic_linux::LinuxDir;

use crate::Result;
use crate::commit::Size;
use crate::stats::Samples;

/// The files beside the state in the crowded directory.
pub const SIBLINGS: usize = 10_000;

/// Medians in µs: (empty directory, crowded directory).
pub fn run(root: &Path, rounds: usize, per_round: usize) -> Result<(f64, f64)> {
    let empty = root.join("siblings-0");
    let crowded = root.join("siblings-10000");
    for d in [&empty, &crowded] {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d)?;
    }
    for i in 0..SIBLINGS {
        fs::write(crowded.join(format!("other-{i:05}.json")), b"{}\n")?;
    }
    let users = Size::Small.users();
    let store: Store<_> = Store::new("users.json", Mode::PRIVATE);
    let mut buf = vec![0u8; 64 * 1024];
    let mut samples = [Samples::default(), Samples::default()];
    let mut dirs = [LinuxDir::open(&empty)?, LinuxDir::open(&crowded)?];
    for round in 0..rounds {
        for (dir, s) in dirs.iter_mut().zip(samples.iter_mut()) {
            for _ in 0..per_round {
                let t = Instant::now();
                store.save(dir, &mut buf, &users)?;
                s.push(round, t.elapsed());
            }
        }
    }
    for d in [&empty, &crowded] {
        let _ = fs::remove_dir_all(d);
    }
    Ok((samples[0].median() * 1e6, samples[1].median() * 1e6))
}
