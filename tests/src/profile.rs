//! Crash-model profiles, and the space of crash states a profile allows.
//!
//! A profile narrows the worst case of [`crate::sim`] to what a family of
//! real filesystems may leave behind. Each one is stated as three things:
//!
//! 1. how a landed write chunk may look ([`Landing`]: data, zeros, garbage;
//!    or never, until flushed);
//! 2. which micro-operations depend on which (*A requires B*: A may survive
//!    a power cut only if B does), including groups that land all or none;
//! 3. what a flush carries along besides its own file or directory.
//!
//! | profile | write chunks | ordering | rename | file flush also makes durable |
//! |---|---|---|---|---|
//! | `posix-worst` | data, zeros or garbage | none | destination atomic (old or new), source may survive | — |
//! | `ext4-ordered` | data | metadata in order (the journal); a size update only after the file's earlier data (`data=ordered`); a rename over an existing file only after the source's data (`auto_da_alloc`); overwrites in place unordered | atomic | every earlier metadata operation (journal commit) |
//! | `log-structured` | never before a flush | metadata in order | atomic | every earlier metadata operation |
//! | `fat` | data, zeros or garbage; at least 512 B atomic sectors | none | three separate steps, in order | — |
//! | `jffs2` | data (a torn node fails its CRC and is dropped) | everything in order (one log) | destination atomic, source may survive | — |
//!
//! `posix-worst` is the model of the design brief (ALICE's abstract
//! persistence model without its ordering guarantees); every other profile
//! allows a subset of its crash states, except `fat`, whose rename may lose
//! the destination — the reason the Replace protocol is not safe there.
//! The `ext4-ordered` rules follow Ferrite's ext4 model (Bornholt et al.,
//! ASPLOS'16); `log-structured` follows littlefs and UBIFS (metadata
//! commits are atomic and ordered, file data is committed by sync);
//! `jffs2` writes every operation as a CRC-checked node into one log.

use std::fmt;
use std::ops::ControlFlow;

use crate::rng::SplitMix64;
use crate::sim::{Entry, Image, Landing, MicroOp, Origin, Snapshot};

/// A crash-model profile. See the module documentation for the rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// The worst case any POSIX filesystem may show (ALICE's model).
    #[default]
    PosixWorst,
    /// ext4 with `data=ordered` (the default), after Ferrite.
    Ext4Ordered,
    /// UBIFS, littlefs: metadata atomic and in order, data only on flush.
    LogStructured,
    /// vfat, exFAT: rename is three separate steps; 512-byte sectors.
    Fat,
    /// JFFS2: one log of CRC-checked nodes; the source of a rename may
    /// survive it.
    Jffs2,
}

const DATA: &[Landing] = &[Landing::Data];
const TORN: &[Landing] = &[Landing::Data, Landing::Zeros, Landing::Garbage];
const NEVER: &[Landing] = &[];

impl Profile {
    /// Every profile, the worst first.
    pub const ALL: [Profile; 5] = [
        Profile::PosixWorst,
        Profile::Ext4Ordered,
        Profile::LogStructured,
        Profile::Fat,
        Profile::Jffs2,
    ];

    /// The profile's name as printed and parsed (`"posix-worst"`).
    pub const fn name(self) -> &'static str {
        match self {
            Profile::PosixWorst => "posix-worst",
            Profile::Ext4Ordered => "ext4-ordered",
            Profile::LogStructured => "log-structured",
            Profile::Fat => "fat",
            Profile::Jffs2 => "jffs2",
        }
    }

    /// The profile named `name`.
    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether renaming over a name is crash-atomic here (what the
    /// simulator reports in [`fsatomic::Capabilities::atomic_replace`]).
    pub const fn atomic_replace(self) -> bool {
        !matches!(self, Profile::Fat)
    }

    /// Whether name changes land in the order they were made (a journal
    /// or a log), as the simulator reports in
    /// [`fsatomic::Capabilities::ordered_names`].
    pub const fn ordered_names(self) -> bool {
        matches!(
            self,
            Profile::Ext4Ordered | Profile::LogStructured | Profile::Jffs2
        )
    }

    /// The smallest write unit that lands whole: FAT media write 512-byte
    /// sectors atomically.
    pub const fn min_granularity(self) -> u64 {
        match self {
            Profile::Fat => 512,
            _ => 1,
        }
    }

    /// The write granularity actually simulated for a requested one.
    pub fn effective_granularity(self, requested: u64) -> u64 {
        requested.max(self.min_granularity()).max(1)
    }

    /// How a write chunk (or set-size) of `entry` may land if it is not
    /// flushed; empty if it never lands before a flush.
    fn landings(self, entry: &Entry) -> &'static [Landing] {
        match (self, &entry.op) {
            (Profile::PosixWorst | Profile::Fat, MicroOp::Write { .. }) => TORN,
            (Profile::LogStructured, MicroOp::Write { .. } | MicroOp::SetSize { .. }) => NEVER,
            _ => DATA,
        }
    }

    /// Whether `entry` is metadata kept in order by a journal or log.
    fn is_ordered_meta(self, entry: &Entry) -> bool {
        match self {
            Profile::Ext4Ordered => entry.is_name_op() || entry.origin == Origin::SetLen,
            Profile::LogStructured => entry.is_name_op(),
            _ => false,
        }
    }

    /// The dependency edges among the entries of `log`: `requires` pairs
    /// `(a, b)` (a may land only if b does) and `groups` pairs (both or
    /// neither).
    fn edges(self, log: &[Entry]) -> Edges {
        let mut e = Edges::default();
        // Renames: find the parts of each call.
        for (i, entry) in log.iter().enumerate() {
            if entry.origin != Origin::RenameLinkDst {
                continue;
            }
            let same = |j: usize, origin: Origin| {
                log.get(j)
                    .filter(|x| x.call == entry.call && x.origin == origin)
                    .map(|_| j)
            };
            let dst = i
                .checked_sub(1)
                .and_then(|j| same(j, Origin::RenameUnlinkDst));
            let src = same(i + 1, Origin::RenameUnlinkSrc);
            // The destination is replaced atomically, except on FAT, where
            // the new entry needs the old one gone; the source goes with
            // the new entry where metadata is journaled, else after it.
            match (self, dst) {
                (Profile::Fat, Some(d)) => e.requires.push((i, d)),
                (_, Some(d)) => e.groups.push((d, i)),
                _ => {}
            }
            match (self, src) {
                (Profile::Ext4Ordered | Profile::LogStructured, Some(s)) => e.groups.push((s, i)),
                (_, Some(s)) => e.requires.push((s, i)),
                _ => {}
            }
            // ext4's auto_da_alloc: a rename over an existing file waits for
            // the source's delayed data.
            if let (Profile::Ext4Ordered, Some(_), MicroOp::Link { ino, .. }) =
                (self, dst, &entry.op)
            {
                for (j, earlier) in log[..i].iter().enumerate() {
                    if earlier.data_ino() == Some(*ino) {
                        e.requires.push((i, j));
                    }
                }
            }
        }
        // A set-size issued by a write, and the chunk it makes visible.
        for (i, entry) in log.iter().enumerate() {
            let is_extend =
                matches!(entry.op, MicroOp::SetSize { .. }) && entry.origin == Origin::Write;
            let next = log
                .get(i + 1)
                .filter(|n| n.call == entry.call && matches!(n.op, MicroOp::Write { .. }));
            if let (true, Some(_)) = (is_extend, next) {
                match self {
                    // data=ordered: the data are forced out before the
                    // metadata (the new size) is committed — this chunk and
                    // every earlier one of the file.
                    // (Stated through the previous size update of the file,
                    // which covers the chunks before it: the same crash
                    // images with O(n) edges instead of O(n²).)
                    Profile::Ext4Ordered => {
                        e.requires.push((i, i + 1));
                        if let MicroOp::SetSize { ino, .. } = entry.op {
                            for (j, earlier) in log[..i].iter().enumerate().rev() {
                                match earlier.op {
                                    MicroOp::Write { ino: w, .. } if w == ino => {
                                        e.requires.push((i, j));
                                    }
                                    MicroOp::SetSize { ino: w, .. }
                                        if w == ino && earlier.origin == Origin::Write =>
                                    {
                                        e.requires.push((i, j));
                                        break;
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                    // One node carries the data and the new size.
                    Profile::Jffs2 => e.groups.push((i, i + 1)),
                    _ => {}
                }
            }
        }
        // Journals and logs keep their order.
        match self {
            Profile::Jffs2 => {
                for i in 1..log.len() {
                    e.requires.push((i, i - 1));
                }
            }
            Profile::Ext4Ordered | Profile::LogStructured => {
                let mut last = None;
                for (i, entry) in log.iter().enumerate() {
                    if self.is_ordered_meta(entry) {
                        if let Some(prev) = last {
                            e.requires.push((i, prev));
                        }
                        last = Some(i);
                    }
                }
            }
            Profile::PosixWorst | Profile::Fat => {}
        }
        e
    }

    /// The entries a file flush of inode `ino` makes durable (before the
    /// dependency closure).
    pub(crate) fn file_flush_scope(self, log: &[Entry], ino: u64) -> Vec<bool> {
        log.iter()
            .map(|e| e.data_ino() == Some(ino) || self.is_ordered_meta(e))
            .collect()
    }

    /// The entries a directory flush makes durable (before the closure).
    pub(crate) fn dir_flush_scope(self, log: &[Entry]) -> Vec<bool> {
        log.iter().map(Entry::is_name_op).collect()
    }

    /// `scope` closed under the dependencies: everything a flush of
    /// `scope` must make durable.
    pub(crate) fn flush_closure(self, log: &[Entry], scope: Vec<bool>) -> Vec<bool> {
        let graph = Graph::build(self, log);
        let mut unit_in = vec![false; graph.units.len()];
        let mut stack: Vec<usize> = scope
            .iter()
            .enumerate()
            .filter(|(_, s)| **s)
            .map(|(i, _)| graph.unit_of[i])
            .collect();
        while let Some(u) = stack.pop() {
            if unit_in[u] {
                continue;
            }
            unit_in[u] = true;
            stack.extend(graph.units[u].requires.iter().copied());
        }
        (0..log.len()).map(|i| unit_in[graph.unit_of[i]]).collect()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Default)]
struct Edges {
    requires: Vec<(usize, usize)>,
    groups: Vec<(usize, usize)>,
}

/// Entries that land together (a strongly connected component of the
/// requires-graph, groups counting as edges both ways).
#[derive(Clone, Debug)]
struct Unit {
    members: Vec<usize>,
    /// Units this one requires; all come earlier in [`Graph::units`].
    requires: Vec<usize>,
    /// How many landed combinations the unit has (0: it never lands).
    combos: u64,
}

/// The log's dependency graph, condensed: units in an order where every
/// unit comes after the units it requires.
#[derive(Clone, Debug)]
struct Graph {
    units: Vec<Unit>,
    unit_of: Vec<usize>,
}

impl Graph {
    fn build(profile: Profile, log: &[Entry]) -> Graph {
        let n = log.len();
        let edges = profile.edges(log);
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(a, b) in &edges.requires {
            adj[a].push(b);
        }
        for &(a, b) in &edges.groups {
            adj[a].push(b);
            adj[b].push(a);
        }
        // Tarjan's algorithm, iteratively. Components come out after every
        // component they reach, i.e. after what they require.
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0usize; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut unit_of = vec![usize::MAX; n];
        let mut units: Vec<Unit> = Vec::new();
        let mut next = 0;
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            let mut call: Vec<(usize, usize)> = vec![(root, 0)];
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (v, ref mut k)) = call.last_mut() {
                if let Some(&w) = adj[v].get(*k) {
                    *k += 1;
                    if index[w] == usize::MAX {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        call.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let id = units.len();
                    let mut members = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        unit_of[w] = id;
                        members.push(w);
                        if w == v {
                            break;
                        }
                    }
                    members.sort_unstable();
                    units.push(Unit {
                        members,
                        requires: Vec::new(),
                        combos: 0,
                    });
                }
            }
        }
        for (id, unit) in units.iter_mut().enumerate() {
            let mut req: Vec<usize> = unit
                .members
                .iter()
                .flat_map(|&m| adj[m].iter().map(|&w| unit_of[w]))
                .filter(|&u| u != id)
                .collect();
            req.sort_unstable();
            req.dedup();
            debug_assert!(req.iter().all(|&u| u < id));
            unit.requires = req;
            unit.combos = unit
                .members
                .iter()
                .map(|&m| profile.landings(&log[m]).len() as u64)
                .try_fold(1u64, |acc, k| acc.checked_mul(k))
                .unwrap_or(u64::MAX);
        }
        Graph { units, unit_of }
    }
}

/// One crash state: for each log entry, whether it landed and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment(pub Vec<Option<Landing>>);

impl Assignment {
    /// Describe the assignment against its log: the entries that did not
    /// land, or the ones that did, whichever list is shorter.
    pub fn describe(&self, log: &[Entry]) -> String {
        let landed = self.0.iter().filter(|l| l.is_some()).count();
        let lost = self.0.len() - landed;
        if self.0.is_empty() {
            return "log empty: the durable image".to_owned();
        }
        let mut out = String::new();
        if lost <= landed {
            out.push_str(&format!("{landed} of {} landed; lost:", self.0.len()));
            for (e, l) in log.iter().zip(&self.0) {
                if l.is_none() {
                    out.push_str(&format!(" [{e}]"));
                }
            }
            let odd: Vec<String> = log
                .iter()
                .zip(&self.0)
                .filter_map(|(e, l)| match l {
                    Some(l @ (Landing::Zeros | Landing::Garbage)) => Some(format!("[{e}] as {l}")),
                    _ => None,
                })
                .collect();
            if !odd.is_empty() {
                out.push_str(&format!("; landed torn: {}", odd.join(" ")));
            }
        } else {
            out.push_str(&format!("{landed} of {} landed:", self.0.len()));
            for (e, l) in log.iter().zip(&self.0) {
                if let Some(l) = l {
                    out.push_str(&format!(" [{e}]"));
                    if *l != Landing::Data {
                        out.push_str(&format!(" as {l}"));
                    }
                }
            }
        }
        out
    }
}

/// How the crash states of one crash point were covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every state was enumerated; this many.
    Exhaustive(u64),
    /// More than the bound: a seeded sample was taken.
    Sampled,
}

/// The crash states of one [`Snapshot`] under one [`Profile`]: every
/// dependency-closed subset of its log, each landed chunk in each way the
/// profile allows, applied over the durable image.
pub struct CrashSpace<'a> {
    snapshot: &'a Snapshot,
    profile: Profile,
    graph: Graph,
}

impl<'a> CrashSpace<'a> {
    /// The crash states of `snapshot` under `profile`.
    pub fn new(snapshot: &'a Snapshot, profile: Profile) -> CrashSpace<'a> {
        CrashSpace {
            snapshot,
            profile,
            graph: Graph::build(profile, &snapshot.log),
        }
    }

    /// How many options unit `u` has, given the choices of earlier units:
    /// 1 (absent only) if a unit it requires is absent or it never lands.
    fn options(&self, u: usize, choice: &[u64]) -> u64 {
        let unit = &self.graph.units[u];
        if unit.combos == 0 || unit.requires.iter().any(|&r| choice[r] == 0) {
            1
        } else {
            unit.combos.saturating_add(1)
        }
    }

    /// The number of crash states if it is at most `cap`, else `None`.
    pub fn count(&self, cap: u64) -> Option<u64> {
        let mut n = 0u64;
        let flow = self.walk(|_| {
            n += 1;
            if n > cap {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if flow.is_break() { None } else { Some(n) }
    }

    /// Depth-first over all unit choices, in a fixed order.
    fn walk(&self, mut f: impl FnMut(&[u64]) -> ControlFlow<()>) -> ControlFlow<()> {
        let n = self.graph.units.len();
        let mut choice = vec![0u64; n];
        let mut depth = 0;
        loop {
            while depth < n {
                choice[depth] = 0;
                depth += 1;
            }
            f(&choice)?;
            loop {
                if depth == 0 {
                    return ControlFlow::Continue(());
                }
                depth -= 1;
                choice[depth] += 1;
                if choice[depth] < self.options(depth, &choice) {
                    depth += 1;
                    break;
                }
            }
        }
    }

    fn assignment(&self, choice: &[u64]) -> Assignment {
        let log = &self.snapshot.log;
        let mut out = vec![None; log.len()];
        for (u, unit) in self.graph.units.iter().enumerate() {
            let Some(mut combo) = choice[u].checked_sub(1) else {
                continue;
            };
            for &m in &unit.members {
                let ways = self.profile.landings(&log[m]);
                let k = ways.len() as u64;
                out[m] = Some(ways[(combo % k) as usize]);
                combo /= k;
            }
        }
        Assignment(out)
    }

    /// The crash image of `assignment`: the durable image with the landed
    /// entries applied in log order, unreachable inodes dropped.
    pub fn image(&self, assignment: &Assignment) -> Image {
        let mut img = self.snapshot.durable.clone();
        for (entry, landing) in self.snapshot.log.iter().zip(&assignment.0) {
            if let Some(l) = landing {
                img.apply(entry, *l, &self.snapshot.modes);
            }
        }
        img.collect_garbage();
        img
    }

    /// Call `f(index, assignment, image)` for every crash state, in a fixed
    /// order (`index` counts from 0), until it breaks.
    pub fn for_each(&self, mut f: impl FnMut(u64, &Assignment, Image) -> ControlFlow<()>) {
        let mut i = 0;
        let _ = self.walk(|choice| {
            let a = self.assignment(choice);
            let img = self.image(&a);
            let flow = f(i, &a, img);
            i += 1;
            flow
        });
    }

    /// Call `f(index, assignment, image)` for `n` crash states drawn with
    /// `seed`: first the corner states (nothing landed, everything landed,
    /// evenly spaced prefixes of the log, everything but one unit), then
    /// random ones at several landing rates. The same seed gives the same
    /// states in the same order.
    pub fn sample(
        &self,
        seed: u64,
        n: u64,
        mut f: impl FnMut(u64, &Assignment, Image) -> ControlFlow<()>,
    ) {
        let units = self.graph.units.len();
        let mut rng = SplitMix64::new(seed);
        let spread = |k: u64, of: u64| -> usize {
            if of <= 1 {
                0
            } else {
                (k * units as u64 / (of - 1)) as usize
            }
        };
        for i in 0..n {
            let mut choice = vec![0u64; units];
            // Each unit lands (as its first way, data) if allowed and
            // `pick` says so; otherwise a random way.
            let corner_kind = i % 2;
            let corners = 34u64.min(n / 2);
            for u in 0..units {
                let opts = self.options(u, &choice);
                if opts == 1 {
                    continue;
                }
                choice[u] = if i == 0 {
                    0
                } else if i == 1 {
                    1
                } else if i < corners {
                    let k = spread(i / 2, corners / 2);
                    let lands = if corner_kind == 0 { u < k } else { u != k };
                    u64::from(lands)
                } else {
                    let rate = [1, 4, 7][(i % 3) as usize];
                    if rng.chance(rate, 8) {
                        1 + rng.below(opts - 1)
                    } else {
                        0
                    }
                };
            }
            let a = self.assignment(&choice);
            let img = self.image(&a);
            if f(i, &a, img).is_break() {
                return;
            }
        }
    }

    /// Visit the crash states: all of them if there are at most `bound`,
    /// else `samples` of them drawn with `seed`. Returns how they were
    /// covered.
    pub fn explore(
        &self,
        bound: u64,
        samples: u64,
        seed: u64,
        f: impl FnMut(u64, &Assignment, Image) -> ControlFlow<()>,
    ) -> Coverage {
        match self.count(bound) {
            Some(n) => {
                self.for_each(f);
                Coverage::Exhaustive(n)
            }
            None => {
                self.sample(seed, samples, f);
                Coverage::Sampled
            }
        }
    }
}
