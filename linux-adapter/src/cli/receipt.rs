//! The durability receipt of `fsatomic check`: what a commit to a
//! directory actually guarantees there — the mount and its options, the
//! device's write cache — and, with `--json`, one JSON object per state.
//!
//! The mount comes from `/proc/self/mountinfo` (the entry of the
//! directory's device whose mount point is the longest prefix of its
//! path), the write cache from sysfs (`/sys/dev/block/MAJ:MIN/queue/
//! write_cache`, or the whole disk's for a partition). Anything that cannot
//! be read is `null`, never guessed.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// Where the directory is mounted and how.
#[derive(Debug, Clone, Default)]
pub struct Mount {
    /// The mounted device or source (`/dev/vda1`).
    pub source: String,
    /// The mount point.
    pub point: String,
    /// The mount's own options (`rw,relatime`).
    pub options: String,
    /// The filesystem's options (`rw,data=ordered`).
    pub fs_options: String,
    /// Options present that weaken what a flush guarantees, each with why.
    pub weakening: Vec<(&'static str, &'static str)>,
}

/// What the machine says about the durability of commits under `dir`.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// The mount, if `/proc/self/mountinfo` names it.
    pub mount: Option<Mount>,
    /// The device's `queue/write_cache` (`write back`, `write through`).
    pub write_cache: Option<String>,
}

/// What `nobarrier` and `barrier=0` do.
const NO_BARRIER: &str =
    "flushes do not reach the device's cache: a power cut may lose or tear acknowledged commits";

/// Mount options that weaken a flush, and what they do to fsatomic.
const WEAKENING: [(&str, &str); 5] = [
    ("nobarrier", NO_BARRIER),
    ("barrier=0", NO_BARRIER),
    (
        "fsync_mode=nobarrier",
        "f2fs skips the device flush of fsync: a power cut may lose acknowledged commits",
    ),
    (
        "data=writeback",
        "file data is not ordered before metadata; fsatomic flushes data before every rename, so its commits keep their guarantee, but programs that do not may leave garbage after a power cut",
    ),
    (
        "journal_async_commit",
        "ext4 writes its commit block without waiting for the journal: a torn journal transaction may be replayed",
    ),
];

/// The receipt for the directory at `dir` (absolute).
pub fn of(dir: &Path) -> Receipt {
    let Ok(meta) = fs::metadata(dir) else {
        return Receipt::default();
    };
    let dev = std::os::unix::fs::MetadataExt::dev(&meta);
    let dev = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
    let mount = fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|info| find_mount(&info, &dev, dir));
    let write_cache = mount.as_ref().and_then(|m| write_cache(&m.source, &dev));
    Receipt { mount, write_cache }
}

/// The mountinfo entry of device `dev` (`MAJ:MIN`) whose mount point is
/// the longest prefix of `dir`.
fn find_mount(info: &str, dev: &str, dir: &Path) -> Option<Mount> {
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let theirs: Vec<&str> = right.split(' ').collect();
            if fields.get(2) != Some(&dev) {
                return None;
            }
            let point = unescape(fields.get(4)?);
            dir.starts_with(&point).then_some(())?;
            let options = fields.get(5)?.to_string();
            let fs_options = theirs.get(2).unwrap_or(&"").to_string();
            let weakening = WEAKENING
                .iter()
                .copied()
                .filter(|(opt, _)| {
                    options
                        .split(',')
                        .chain(fs_options.split(','))
                        .any(|o| o == *opt)
                })
                .collect();
            Some(Mount {
                source: unescape(theirs.get(1)?),
                point,
                options,
                fs_options,
                weakening,
            })
        })
        .max_by_key(|m| m.point.len())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            if let Ok(n) = u8::from_str_radix(&code, 8) {
                out.push(n as char);
                continue;
            }
            out.push(c);
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}

/// The write cache of the block device behind the mount: the source's
/// device number when the source is a device node, else the directory's.
fn write_cache(source: &str, dev: &str) -> Option<String> {
    let dev = match fs::metadata(source) {
        Ok(m) if source.starts_with("/dev/") => {
            let rdev = std::os::unix::fs::MetadataExt::rdev(&m);
            format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev))
        }
        _ => dev.to_string(),
    };
    let node = fs::canonicalize(format!("/sys/dev/block/{dev}")).ok()?;
    [
        node.join("queue/write_cache"),
        node.join("../queue/write_cache"),
    ]
    .iter()
    .find_map(|p| fs::read_to_string(p).ok())
    .map(|s| s.trim().to_string())
}

impl Receipt {
    /// The receipt in words, for the human output of `check`.
    pub fn words(&self) -> String {
        let mut line = match &self.mount {
            Some(m) => format!(
                "mount: {} on {} ({}; filesystem options {})",
                m.source, m.point, m.options, m.fs_options
            ),
            None => "mount: unknown (/proc/self/mountinfo does not name it)".to_string(),
        };
        match self.write_cache.as_deref() {
            Some("write back") => line
                .push_str("; device write cache: write back (volatile: every commit flushes it)"),
            Some(other) => {
                let _ = write!(line, "; device write cache: {other}");
            }
            None => line.push_str("; device write cache: unknown"),
        }
        for (opt, why) in self.mount.iter().flat_map(|m| &m.weakening) {
            let _ = write!(line, "\nwarning: mounted with {opt}: {why}");
        }
        line
    }
}

/// A JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `null`, or the JSON string.
pub fn opt_string(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), string)
}

/// The receipt's fields, as `"mount":…,"device_write_cache":…`.
pub fn json_fields(r: &Receipt) -> String {
    let mount = match &r.mount {
        Some(m) => format!(
            "{{\"source\":{},\"point\":{},\"options\":{},\"fs_options\":{},\"weakening\":[{}]}}",
            string(&m.source),
            string(&m.point),
            string(&m.options),
            string(&m.fs_options),
            m.weakening
                .iter()
                .map(|(opt, why)| format!(
                    "{{\"option\":{},\"effect\":{}}}",
                    string(opt),
                    string(why)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => "null".to_string(),
    };
    format!(
        "\"mount\":{mount},\"device_write_cache\":{}",
        opt_string(r.write_cache.as_deref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,data=writeback
30 22 254:0 /srv /mnt/with\\040space rw,nosuid - ext4 /dev/vda rw,nobarrier
31 22 0:40 / /tmp rw - tmpfs tmpfs rw
";

    #[test]
    fn the_longest_mount_point_of_the_device_wins_and_weakening_options_are_named() {
        let m = find_mount(INFO, "254:0", Path::new("/var/lib/nos")).unwrap();
        assert_eq!((m.source.as_str(), m.point.as_str()), ("/dev/vda", "/"));
        assert_eq!(
            (m.options.as_str(), m.fs_options.as_str()),
            ("rw,relatime", "rw,data=writeback")
        );
        assert_eq!(m.weakening.len(), 1);
        assert_eq!(m.weakening[0].0, "data=writeback");
        let m = find_mount(INFO, "254:0", Path::new("/mnt/with space/x")).unwrap();
        assert_eq!(m.point, "/mnt/with space");
        assert_eq!(m.weakening[0].0, "nobarrier");
        assert!(find_mount(INFO, "8:1", Path::new("/")).is_none());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(opt_string(None), "null");
    }
}
