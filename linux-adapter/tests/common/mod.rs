//! The Linux adapter as the conformance suite sees it.

use std::io;
use std::path::{Path, PathBuf};

use fsatomic::Mode;
use fsatomic_linux::LinuxDir;
use fsatomic_testkit::conformance::Adapter;

/// `fsatomic_linux::LinuxDir` under test.
pub struct Linux;

impl Adapter for Linux {
    type Dir = LinuxDir;
    const NAME: &'static str = "linux";

    fn open(path: &Path) -> io::Result<LinuxDir> {
        LinuxDir::open(path)
    }

    fn create_all(path: &Path, mode: Mode) -> io::Result<(LinuxDir, Vec<PathBuf>)> {
        LinuxDir::create_all(path, mode)
    }

    fn flush_count(dir: &LinuxDir) -> u64 {
        dir.flush_count()
    }
    fn set_lock_timeout(dir: &mut LinuxDir, limit: Option<std::time::Duration>) {
        dir.set_lock_timeout(limit);
    }
    fn set_owner(dir: &mut LinuxDir, owner: fsatomic::Owner) -> std::io::Result<()> {
        dir.set_owner(owner)
    }
}
