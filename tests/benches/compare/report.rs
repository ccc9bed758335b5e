//! The report: markdown blocks for `docs/performance.md` (replaced between
//! `<!-- BEGIN GENERATED name -->` and `<!-- END GENERATED name -->`, the
//! prose around them is kept), and the SVG plots in `docs/perf/`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::commit::{Kind, Size};
use crate::db::Engine;
use crate::group::Group;
use crate::growth::Growth;
use crate::stats::{Samples, bytes, ms, quantile, rate, times};
use crate::svg::{self, Axis, Bar, Panel, Role, Series};
use crate::{CommitResult, Result, Run, repo_root};

fn find(run: &Run, kind: Kind, size: Size) -> &CommitResult {
    run.commits
        .iter()
        .find(|r| r.kind == kind && r.size == size)
        .expect("every configuration ran")
}

/// `f` of `v`, or a dash where nothing was measured.
fn dash<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or("–".into(), f)
}

/// The median of `s`, or a dash without samples.
fn median_or_dash(s: &Samples) -> String {
    dash((s.len() > 0).then_some(s), |s| ms(s.median()))
}

/// One table row of `cells`.
fn row(s: &mut String, cells: &[String]) {
    let _ = writeln!(s, "| {} |", cells.join(" | "));
}

fn machine(run: &Run) -> String {
    let (m, p) = (&run.machine, &run.plan);
    let mode = if p.quick {
        "quick (smoke: too few samples for conclusions)"
    } else {
        "full"
    };
    let companion = if m.companion {
        "a `nice 19` busy process ran beside the measurements (paused for the \"CPUs contended\" columns); see \"Reading these numbers\""
    } else {
        "none (`--no-companion`): every number is in the contended regime if the CPUs were busy"
    };
    format!(
        "- **When:** {}, {mode} mode, {:.0} s wall time\n\
         - **CPU:** {} × {} logical CPUs (a VM shared with other engineers' builds: the load average below says how busy it was)\n\
         - **Load average** (1/5/15 min): {} at the start, {} at the end\n\
         - **Kernel:** Linux {}; **compiler:** {}, `cargo bench` profile (release, debug = 1)\n\
         - **Filesystem** of the bench directory: {} (`statfs` through `LinuxDir::filesystem()`); mount: `{}`; {}\n\
         - **Wake-up probe** (200-byte append + `fdatasync`, 40 each, median): {} alone at the start, {} with a `nice 19` busy process beside it; {} alone at the end. See \"Reading these numbers\".\n\
         - **Companion:** {companion}\n\
         - **Samples:** per-commit {} rounds × {} commits per configuration, interleaved; growth {} rounds × {} appends per size and pattern; group commit {} rounds × {} appends per writer; load {} rounds\n",
        m.date,
        m.seconds,
        m.cpu,
        m.cores,
        m.load.0,
        m.load.1,
        m.kernel,
        m.rustc,
        m.fs,
        m.mount,
        m.storage,
        ms(m.wake.0),
        ms(m.wake.1),
        ms(m.wake.2),
        p.commit_rounds,
        p.commit_batch,
        p.growth_rounds,
        p.growth_batch,
        p.group_rounds,
        p.group_per_writer,
        p.load_rounds
    )
}

fn commit_table(run: &Run, size: Size) -> String {
    let base = &find(run, Kind::Original, size).samples;
    let doc = find(run, Kind::Replace, size).doc_bytes;
    let mut s = format!("Document: {doc} bytes of indented JSON.\n\n");
    s.push_str("| configuration | median | p99 | commits/s | time vs original | median, CPUs contended | flushes/commit (adapter) | flushes/commit (strace) | syscalls/commit | bytes to `write`/commit | page cache dirtied/commit | heap allocations/commit | load: read + parse (median) |\n");
    s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for kind in Kind::ALL {
        let r = find(run, kind, size);
        let flushes = |f: f64| format!("{f:.2}");
        row(
            &mut s,
            &[
                kind.label().into(),
                ms(r.samples.median()),
                ms(r.samples.p99()),
                rate(r.samples.per_second()),
                times(r.samples.ratio_to(base)),
                median_or_dash(&r.contended),
                dash(r.own_flushes, flushes),
                dash(r.traced, |t| flushes(t.flushes)),
                dash(r.traced, |t| format!("{:.1}", t.syscalls)),
                bytes(r.wchar),
                bytes(r.dirtied),
                format!("{:.1}", r.allocs),
                median_or_dash(&r.load),
            ],
        );
    }
    s
}

fn growth_table(g: &Growth) -> String {
    let mut s = format!(
        "{} appends per size and pattern; the history grows by that many during the measurement.\n\n",
        g.appends
    );
    s.push_str("| entries | original: file | original: append (median / p99) | ours: snapshot | ours: append (median / p99) | ours: compaction, once per | ours: per append incl. compaction | speed-up | ours: flushes/append |\n");
    s.push_str("|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (i, n) in g.sizes.iter().enumerate() {
        let total = g.ours_total(i);
        let (original, ours) = (&g.original[i], &g.ours[i]);
        row(
            &mut s,
            &[
                n.to_string(),
                bytes(g.original_bytes[i] as f64),
                format!("{} / {}", ms(original.median()), ms(original.p99())),
                bytes(g.snapshot_bytes[i] as f64),
                format!("{} / {}", ms(ours.median()), ms(ours.p99())),
                format!(
                    "{} per {:.0} appends",
                    ms(g.compaction[i].median()),
                    g.appends_per_compaction[i]
                ),
                ms(total),
                times(original.median() / total),
                format!("{:.2}", g.ours_flushes[i]),
            ],
        );
    }
    s
}

fn growth_db_table(g: &Growth) -> String {
    let mut s = String::from(
        "One event appended per durable transaction (medians; ours incl. its compaction share), and the state loaded after the appends: opened and parsed into its events.\n\n",
    );
    let engines = Engine::ALL.map(Engine::label);
    let mut head = vec!["entries".to_string(), "fsatomic journal".into()];
    head.extend(engines.iter().map(|e| e.to_string()));
    head.push("fsatomic: load".into());
    head.extend(engines.iter().map(|e| format!("{e}: load")));
    row(&mut s, &head);
    let _ = writeln!(s, "|--:|--:|{}", "--:|".repeat(2 * engines.len() + 1));
    for (i, n) in g.sizes.iter().enumerate() {
        let mut cells = vec![n.to_string(), ms(g.ours_total(i))];
        cells.extend(g.db.iter().map(|db| ms(db[i].median())));
        cells.push(ms(g.ours_load[i].median()));
        cells.extend(g.db_load.iter().map(|db| ms(db[i].median())));
        row(&mut s, &cells);
    }
    s
}

fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// Per round, throughput at index `i` over throughput at index 0; median.
fn scaling(v: &[Vec<f64>], i: usize) -> f64 {
    let r: Vec<f64> = v[i].iter().zip(&v[0]).map(|(a, b)| a / b).collect();
    median(&r)
}

fn group_table(g: &Group) -> String {
    let mut s = format!(
        "Each writer appends {} rate-limit hits per round (`nas` rate-limit store); updates/s is the median over rounds.\n\n",
        g.per_writer
    );
    s.push_str("| writers | grouped (`GroupJournal`): updates/s | vs 1 writer | flushes/update | grouped, CPUs contended: updates/s | vs 1 writer | independent appenders: updates/s | vs 1 writer | flushes/update | SQLite WAL, a connection per thread: updates/s | vs 1 writer |\n");
    s.push_str("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (i, n) in g.writers.iter().enumerate() {
        // Updates/s and the scaling against one writer, or dashes.
        let rates = |v: &[Vec<f64>]| {
            if v[i].is_empty() {
                ["–".to_string(), "–".into()]
            } else {
                [rate(median(&v[i])), times(scaling(v, i))]
            }
        };
        let [grouped, grouped_x] = rates(&g.grouped);
        let [contended, contended_x] = rates(&g.grouped_contended);
        let [independent, independent_x] = rates(&g.independent);
        let [sqlite, sqlite_x] = rates(&g.sqlite);
        row(
            &mut s,
            &[
                n.to_string(),
                grouped,
                grouped_x,
                format!("{:.2}", g.grouped_flushes[i]),
                contended,
                contended_x,
                independent,
                independent_x,
                format!("{:.2}", g.independent_flushes[i]),
                sqlite,
                sqlite_x,
            ],
        );
    }
    s
}

fn load_table(run: &Run) -> String {
    let mut s = String::new();
    s.push_str("| store | holds | protocol | on disk | fsatomic: open + load (median / p99) | original: one JSON file | read + parse (median) |\n");
    s.push_str("|---|---|---|--:|--:|--:|--:|\n");
    for l in &run.load {
        row(
            &mut s,
            &[
                l.store.into(),
                l.holds.clone(),
                l.protocol.into(),
                bytes(l.bytes as f64),
                format!("{} / {}", ms(l.ours.median()), ms(l.ours.p99())),
                bytes(l.original_bytes as f64),
                ms(l.original.median()),
            ],
        );
    }
    let total: f64 = run.load.iter().map(|l| l.ours.median()).sum();
    let _ = writeln!(s, "\nAll seven together: {} (sum of medians).", ms(total));
    s
}

fn footprint(run: &Run, alloc_log: Option<&Path>) -> String {
    let mut s = String::new();
    s.push_str("Heap allocations in the core's commit and load paths, counted by a counting global allocator over a fixed-capacity RAM directory that itself never allocates (`tests/tests/alloc.rs`, part of `cargo test`):\n\n");
    let log = alloc_log.and_then(|p| fs::read_to_string(p).ok());
    match log {
        Some(text) => {
            // `--nocapture` prints a test's first line after "test NAME ... ".
            let lines: Vec<&str> = text
                .lines()
                .filter_map(|l| l.find("alloc: ").map(|at| &l[at..]))
                .collect();
            if lines.is_empty() {
                s.push_str("- (the alloc test printed nothing: see `tests/benches/report.sh`)\n");
            }
            for l in lines {
                let _ = writeln!(s, "- {}", l.trim_start_matches("alloc: "));
            }
            let verdict = text.lines().find(|l| l.starts_with("test result:")).unwrap_or("test result: unknown");
            let _ = writeln!(s, "\n`cargo test -p fsatomic-testkit --test alloc`: {verdict}");
        }
        None => s.push_str("- not run in this generation (run `tests/benches/report.sh`, which runs the test first)\n"),
    }
    let ours: Vec<String> = run
        .commits
        .iter()
        .filter(|r| r.kind.self_counting())
        .map(|r| format!("{} {} {:.1}", r.kind.label(), r.size.key(), r.allocs))
        .collect();
    let _ = writeln!(
        s,
        "\nOn the real adapter (from the per-commit table, heap allocations per commit): {}. Replace and Slots allocate nothing on `LinuxDir` either; Store::save's allocations come from the adapter (the orphan sweep lists the directory through `rustix::fs::Dir`, which allocates its buffer), the Journal's from the benchmark's own state type (`Users` with `String`s, folded with `clone_from`) and its compactions — not from the core.",
        ours.join("; ")
    );
    s.push_str("\nCortex-M4 (thumbv7em-none-eabihf, opt-level \"z\", LTO; the firmware of `boards/cortex-m4`, which is the core, a RAM directory, the power-cut harness and semihosting output), from `boards/test cortex-m4`:\n\n");
    let figures = std::env::var_os("FSATOMIC_BOARDS_FIGURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target-boards/cortex-m4/figures.txt"));
    match fs::read_to_string(&figures) {
        Ok(text) => {
            s.push_str("```text\n");
            s.push_str(&text);
            if !text.ends_with('\n') {
                s.push('\n');
            }
            s.push_str("```\n");
        }
        Err(_) => {
            let _ = writeln!(
                s,
                "**PLACEHOLDER:** `{}` not found; run `boards/test cortex-m4`, then this report again.",
                figures.display()
            );
        }
    }
    s
}

/// `kind` against the fastest of `others` at `size`: what was measured,
/// and whether its time is within `limit` times theirs (the per-round
/// ratio of medians).
fn against(run: &Run, size: Size, kind: Kind, others: &[Kind], limit: f64) -> (String, bool) {
    let r = find(run, kind, size);
    let best = others
        .iter()
        .map(|&k| find(run, k, size))
        .min_by(|a, b| a.samples.median().total_cmp(&b.samples.median()))
        .unwrap_or(r);
    let ratio = r.samples.ratio_to(&best.samples);
    let (ours, theirs) = (ms(r.samples.median()), ms(best.samples.median()));
    let (label, ratio_x) = (best.kind.label(), times(ratio));
    (
        format!("{ours} vs {theirs} ({label}): {ratio_x}"),
        ratio <= limit,
    )
}

/// The goals of `docs/performance.md`: what this run measured for each,
/// and whether it was met.
fn targets(run: &Run) -> String {
    let mut s = String::from("| goal | measured in this run | |\n|---|---|---|\n");
    let mut goal = |goal: &str, measured: String, met: bool| {
        let met = if met { "met" } else { "**missed**" };
        row(&mut s, &[goal.into(), measured, met.into()]);
    };
    if !run.commits.is_empty() {
        let peers = [Kind::AtomicWrites, Kind::AtomicWriteFile, Kind::Tempfile];
        for size in Size::ALL {
            let doc = size.label();
            let (measured, met) = against(run, size, Kind::Replace, &peers, 1.05);
            let fl = find(run, Kind::Replace, size).own_flushes;
            let fl = fl.unwrap_or(f64::NAN);
            goal(
                &format!("Replace no slower than the best peer, at two flushes ({doc})"),
                format!("{measured}, {fl:.2} flushes/commit"),
                met && (fl - 2.0).abs() < 0.01,
            );
        }
        let journal = &find(run, Kind::Journal, Size::Small).samples;
        let original = &find(run, Kind::Original, Size::Small).samples;
        let raw = &find(run, Kind::RawAppend, Size::Small).samples;
        let (j, o, r) = (journal.median(), original.median(), raw.median());
        let (j, o, r) = (ms(j), ms(o), ms(r));
        let (speed, floor) = (1.0 / journal.ratio_to(original), journal.ratio_to(raw));
        let (speed_x, floor_x) = (times(speed), times(floor));
        goal(
            "Journal update ≥ 3× faster than the original protocol (200 B)",
            format!("{j} vs {o}: {speed_x} faster"),
            speed >= 3.0,
        );
        goal(
            "Journal update within 1.2× of raw append + fdatasync (200 B)",
            format!("{j} vs {r}: {floor_x}"),
            floor <= 1.2,
        );
        for size in Size::ALL {
            let doc = size.label();
            let (measured, met) = against(run, size, Kind::StoreSave, &[Kind::TwoBarrier], 1.1);
            goal(
                &format!(
                    "`Store::save` (Replace) within 1.1× of the hand-written two-barrier replace ({doc})"
                ),
                measured,
                met,
            );
            let dbs = [Kind::SqliteWal, Kind::Redb];
            let (measured, met) = against(run, size, Kind::Slots, &dbs, 1.0);
            goal(
                &format!("Slots commit no slower than the faster of SQLite WAL and redb ({doc})"),
                measured,
                met,
            );
        }
    }
    if let Some(g) = &run.group
        && let Some(i8) = g.writers.iter().position(|&n| n == 8)
    {
        let (ours, sqlite) = (median(&g.grouped[i8]), median(&g.sqlite[i8]));
        let sc = scaling(&g.grouped, i8);
        let (eight, one, db) = (rate(ours), rate(median(&g.grouped[0])), rate(sqlite));
        let (sc_x, flushes, vs_db) = (times(sc), g.grouped_flushes[i8], times(ours / sqlite));
        goal(
            "8 concurrent appenders ≥ 5× the throughput of one",
            format!("{eight} vs {one} updates/s: {sc_x}, {flushes:.2} flushes/update"),
            sc >= 5.0,
        );
        goal(
            "8 concurrent appenders ≥ the throughput of 8 threads with a SQLite WAL connection each",
            format!("{eight} vs {db} updates/s: {vs_db}"),
            ours >= sqlite,
        );
    }
    let Some(gr) = &run.growth else { return s };
    // The databases: SQLite WAL and redb ([`Engine::ALL`] order).
    let (wal, redb) = (&gr.db[0], &gr.db[2]);
    if let Some(i) = gr.sizes.iter().position(|&n| n == 5_000) {
        let sp = gr.original[i].median() / gr.ours_total(i);
        let (theirs, ours, sp_x) = (ms(gr.original[i].median()), ms(gr.ours_total(i)), times(sp));
        goal(
            "Snapshot-database append at 5,000 entries ≥ 100× faster than the original pattern",
            format!("{theirs} vs {ours} (incl. compaction): {sp_x} faster"),
            sp >= 100.0,
        );
    }
    let last = gr.sizes.len() - 1;
    let (small, large) = (gr.sizes[0], gr.sizes[last]);
    let flat = gr.ours_total(last) / gr.ours_total(0);
    let growth = |s: &[Samples]| times(s[last].median() / s[0].median());
    let (flat_x, append, wal_x, redb_x) =
        (times(flat), growth(&gr.ours), growth(wal), growth(redb));
    goal(
        "…and flat as history grows (cost at the largest size ≤ 1.1× the smallest)",
        format!(
            "{large} entries / {small} entries: {flat_x} incl. compaction, {append} for the append alone (SQLite WAL {wal_x}, redb {redb_x})"
        ),
        flat <= 1.1,
    );
    // The journal against the faster database at every history size; the
    // worst ratio is the verdict.
    let (worst, at) = (0..gr.sizes.len())
        .map(|i| (gr.ours_total(i) / wal[i].median().min(redb[i].median()), i))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((f64::NAN, 0));
    let (n, ours, worst_x) = (gr.sizes[at], ms(gr.ours_total(at)), times(worst));
    let (w, r) = (ms(wal[at].median()), ms(redb[at].median()));
    goal(
        "Journal append no slower than the faster of SQLite WAL and redb, at every history size",
        format!(
            "worst at {n} entries: {ours} (incl. compaction) vs SQLite WAL {w}, redb {r}: {worst_x}"
        ),
        worst <= 1.0,
    );
    s
}

/// Every generated block: (name, markdown).
pub fn blocks(run: &Run, alloc_log: Option<&Path>) -> Vec<(String, String)> {
    let mut b = vec![
        ("machine".into(), machine(run)),
        ("targets".into(), targets(run)),
    ];
    if !run.commits.is_empty() {
        b.push(("commit-200B".into(), commit_table(run, Size::Small)));
        b.push(("commit-64KiB".into(), commit_table(run, Size::Large)));
    }
    if let Some(g) = &run.growth {
        b.push(("growth".into(), growth_table(g)));
        b.push(("growth-databases".into(), growth_db_table(g)));
    }
    if let Some(g) = &run.group {
        b.push(("group".into(), group_table(g)));
    }
    if !run.load.is_empty() {
        b.push(("load".into(), load_table(run)));
    }
    if !run.commits.is_empty() {
        b.push(("footprint".into(), footprint(run, alloc_log)));
    }
    b
}

/// The note under a plot's title: `what`, and where and when.
fn note(run: &Run, what: &str) -> String {
    let m = &run.machine;
    format!("{what}; {} on {}, {}", m.fs, m.cpu, m.date)
}

fn latency_svg(run: &Run) -> String {
    let panels: Vec<Panel> = Size::ALL
        .iter()
        .map(|&size| Panel {
            title: format!(
                "{} document ({} bytes)",
                if size == Size::Small {
                    "users"
                } else {
                    "64 KiB"
                },
                find(run, Kind::Replace, size).doc_bytes
            ),
            bars: Kind::ALL
                .iter()
                .map(|&k| {
                    let r = find(run, k, size);
                    Bar {
                        label: k.label().into(),
                        value: r.samples.median(),
                        whisker: r.samples.p99(),
                        role: k.role(),
                    }
                })
                .collect(),
        })
        .collect();
    let note = note(run, "bar: median, whisker: p99");
    svg::bars("Latency of one durable commit", &note, &panels, ms)
}

fn growth_svg(run: &Run, g: &Growth) -> String {
    let xs: Vec<f64> = g.sizes.iter().map(|&n| n as f64).collect();
    let line = |name: &str, role, dashed, y: &dyn Fn(usize) -> f64| Series {
        name: name.into(),
        points: xs.iter().enumerate().map(|(i, &x)| (x, y(i))).collect(),
        role,
        dashed,
    };
    let series = [
        line(
            "original: read all, rewrite all",
            Role::Original,
            false,
            &|i| g.original[i].median(),
        ),
        line("fsatomic journal: append", Role::Ours, false, &|i| {
            g.ours[i].median()
        }),
        line("… incl. compaction share", Role::Ours, true, &|i| {
            g.ours_total(i)
        }),
        line(Engine::SqliteWal.label(), Role::Database, false, &|i| {
            g.db[0][i].median()
        }),
        line(Engine::Redb.label(), Role::Database, true, &|i| {
            g.db[2][i].median()
        }),
    ];
    let (lo, hi) = svg::y_range(&series);
    svg::lines(
        "Cost of one snapshot-database append against history size",
        &note(run, "median per append"),
        &Axis {
            label: "entries in the history".into(),
            log: true,
            ticks: svg::log_ticks(xs[0], *xs.last().unwrap_or(&10.0)),
        },
        &Axis {
            label: "time per append".into(),
            log: true,
            ticks: svg::log_ticks(lo, hi),
        },
        &series,
        ms,
    )
}

fn group_svg(run: &Run, g: &Group) -> String {
    let line = |name: &str, role, dashed, v: &[Vec<f64>]| Series {
        name: name.into(),
        points: g
            .writers
            .iter()
            .zip(v)
            .map(|(&n, r)| (n as f64, median(r)))
            .collect(),
        role,
        dashed,
    };
    let mut series = vec![
        line(
            "GroupJournal (shared flushes)",
            Role::Ours,
            false,
            &g.grouped,
        ),
        line(
            "GroupJournal, CPUs contended",
            Role::Ours,
            true,
            &g.grouped_contended,
        ),
        line("independent appenders", Role::Peer, true, &g.independent),
        line(
            "SQLite WAL, a connection per thread",
            Role::Database,
            false,
            &g.sqlite,
        ),
    ];
    series.retain(|s| s.points.iter().all(|p| p.1 > 0.0));
    svg::lines(
        "Journal throughput against concurrent writers",
        &note(run, "median updates/s over rounds"),
        &Axis {
            label: "concurrent appenders (threads)".into(),
            log: true,
            ticks: g.writers.iter().map(|&n| n as f64).collect(),
        },
        &Axis {
            label: "durable updates per second".into(),
            log: false,
            ticks: svg::linear_ticks(svg::y_range(&series).1),
        },
        &series,
        |y| format!("{y:.0}"),
    )
}

/// Replace the generated blocks of `docs/performance.md` and write the
/// plots to `docs/perf/`.
pub fn write_docs(run: &Run, blocks: &[(String, String)]) -> Result<()> {
    let root = repo_root();
    let doc_path = root.join("docs/performance.md");
    let mut doc = fs::read_to_string(&doc_path)?;
    for (name, text) in blocks {
        let begin = format!("<!-- BEGIN GENERATED {name} -->");
        let end = format!("<!-- END GENERATED {name} -->");
        let (Some(b), Some(e)) = (doc.find(&begin), doc.find(&end)) else {
            return Err(format!("docs/performance.md lacks the markers of block {name}").into());
        };
        let from = b + begin.len();
        doc.replace_range(from..e, &format!("\n{text}"));
    }
    fs::write(&doc_path, doc)?;
    let dir = root.join("docs/perf");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("latency.svg"), latency_svg(run))?;
    if let Some(g) = &run.growth {
        fs::write(dir.join("growth.svg"), growth_svg(run, g))?;
    }
    if let Some(g) = &run.group {
        fs::write(dir.join("group.svg"), group_svg(run, g))?;
    }
    Ok(())
}
