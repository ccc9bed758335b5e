#!/usr/bin/env python3
"""The write-cache run of the power-cut board: record, replay, check.

Killing qemu (cut.py) loses what the guest had not yet handed to its disk,
never what the disk had accepted. A disk with a volatile write cache (eMMC,
SD cards, USB sticks) loses more: any write it accepted since the last
flush, in any combination. This run makes exactly those states:

1. Record. Boot the guest once on a fresh image behind qemu's
   `blklogwrites` block driver, which appends every write, discard and
   flush the guest issues to a log on the host (the dm-log-writes format).
   The torture program commits versions and prints `ACK v=N` when a commit
   call returned, then waits `--pace` ms; the host notes the log's length
   when each ACK line arrives. After `--commits` ACKs, SIGKILL.
2. Replay. The log splits at its flushes into windows. A crash image of a
   window is every write before the window's flush, plus a subset of the
   window's writes (those the cache happened to write back): every subset
   when the window has at most `FULL_WINDOW` writes, otherwise a seeded
   sample that always holds "none", "all" and each single write dropped.
   Images with the same writes applied are one image.
3. Judge. The crash could come at any instant before the next flush, so
   an image must hold every version acknowledged before the next flush was
   logged. The guest checks images in batches (one virtio disk each,
   `pc.phase=checkall`): mount, the torture program's recovery and
   verdict, unmount. Then the host runs the filesystem's checker on each.

Called by `boards/powercut/run --cache`, which fetches and builds what this
needs. Results: `result.json` per configuration, a Markdown report.
"""

import argparse
import itertools
import json
import os
import queue
import random
import shutil
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cut  # noqa: E402  (the boot, verdict and fsck of the power-cut board)

# name: (fs, mount options, torture mode, image MiB, commits, must, provisioned)
# must: "pass"; "fail" (a litmus test of the harness: it must see the
# failure); "report" (a known limitation, measured and reported, never
# gating). provisioned: record from an image on which a first, unrecorded
# boot already committed v=1 (the state's directory and files exist).
CONFIGS = {
    "ext4-ordered/replace": ("ext4", "data=ordered", "replace", 64, 35, "pass", False),
    "xfs/replace": ("xfs", "", "replace", 320, 70, "pass", False),
    "btrfs/replace": ("btrfs", "", "replace", 256, 30, "pass", False),
    "f2fs/replace": ("f2fs", "", "replace", 128, 30, "pass", False),
    "ext4-ordered/journal": ("ext4", "data=ordered", "journal", 64, 60, "pass", False),
    "f2fs/journal": ("f2fs", "", "journal", 128, 60, "pass", False),
    # FAT cannot create a file safely on such a disk (one fsync writes the
    # directory entry and the allocation table, unordered): Slots is
    # recorded once its two files exist, and their creation is measured
    # on its own below.
    "vfat/slots": ("vfat", "", "slots", 64, 70, "pass", True),
    "vfat/slots-first-boot": ("vfat", "", "slots", 64, 3, "report", False),
    # Litmus: temporary file and rename, no flush at all.
    "ext4-ordered/unsynced": ("ext4", "data=ordered", "unsynced", 64, 170, "fail", False),
    # Litmus: Replace without its directory flush (the file is flushed).
    "ext4-ordered/nodirsync": ("ext4", "data=ordered", "nodirsync", 64, 50, "fail", False),
}

# mkfs options of this run: no background zeroing of ext4's inode tables
# and journal after the first mount (it would fill the log with writes
# no commit made).
MKFS_EXTRA = {"ext4": ["-E", "lazy_itable_init=0,lazy_journal_init=0"]}

LOG_MAGIC = 0x6A736677736872
LOG_SECTOR = 512
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
FULL_WINDOW = 5      # windows of at most this many writes: every subset
SAMPLE = 24          # otherwise at most this many subsets per window
BATCH = 24           # crash images per check boot (virtio-mmio has 32 slots)


class Entry:
    __slots__ = ("sector", "sectors", "flags", "data", "end")

    def __init__(self, sector, sectors, flags, data, end):
        self.sector, self.sectors, self.flags = sector, sectors, flags
        self.data, self.end = data, end  # data: (offset in log, length) or None


def read_log(path):
    """The entries of a dm-log-writes log (qemu's blklogwrites): a
    superblock sector, then per entry a sector holding `sector, nr_sectors,
    flags, data_len` (little-endian u64s) followed by the written data.
    The superblock's count is only updated at flushes, so entries are read
    up to the end of the file; an entry the SIGKILL cut short is dropped."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(LOG_SECTOR)
        if len(head) >= 28:
            magic, version, _n, sectorsize = struct.unpack_from("<QQQI", head)
            if magic not in (0, LOG_MAGIC) or (magic and (version != 1 or sectorsize != LOG_SECTOR)):
                raise SystemExit(f"{path}: not a dm-log-writes log of {LOG_SECTOR}-byte sectors "
                                 f"(magic {magic:#x}, version {version}, sector size {sectorsize})")
        entries, off = [], LOG_SECTOR
        while off + LOG_SECTOR <= size:
            f.seek(off)
            sector, sectors, flags, _len = struct.unpack("<QQQQ", f.read(32))
            if sectors == 0 and flags == 0:
                break  # past the last entry written
            if flags & ~(FLUSH | FUA | DISCARD | MARK):
                raise SystemExit(f"{path}: entry {len(entries)} at byte {off}: bad flags {flags:#x}")
            off += LOG_SECTOR
            data = None
            if not flags & DISCARD and sectors:
                n = sectors * LOG_SECTOR
                if off + n > size:
                    break
                data = (off, n)
                off += n
            entries.append(Entry(sector, sectors, flags, data, off))
    return entries


def is_write(e):
    return e.sectors > 0 and not e.flags & MARK


def windows(entries):
    """(start, end, writes): the writes logged after the flush at index
    start - 1 (or from the start of the log) and before the flush at index
    end (or the end of the log)."""
    bounds = [i for i, e in enumerate(entries) if e.flags & FLUSH] + [len(entries)]
    out, start = [], 0
    for end in bounds:
        out.append((start, end, [i for i in range(start, end) if is_write(entries[i])]))
        start = end + 1
    return out


def subsets(writes, rng):
    """The subsets of a window's writes a cache may have kept, and whether
    that list is every subset."""
    k = len(writes)
    if k <= FULL_WINDOW:
        return [c for r in range(k + 1) for c in itertools.combinations(writes, r)], True
    chosen = {(), tuple(writes)} | {tuple(w for w in writes if w != d) for d in writes}
    tries = 0
    while len(chosen) < SAMPLE and tries < 10 * SAMPLE:
        tries += 1
        chosen.add(tuple(w for w in writes if rng.random() < 0.5))
    return sorted(chosen, key=lambda c: (len(c), c)), False


def key(start, applied, write_indices):
    """The canonical identity of a crash image that holds every write
    before entry `start` and the writes `applied` after it: the first
    write it lacks (-1: none), and the writes it holds after that one."""
    s = set(applied)
    first = next((i for i in write_indices if i >= start and i not in s), -1)
    return (first, tuple(sorted(i for i in s if i > first)) if first >= 0 else ())


def plan(entries, acks, rng):
    """Every crash image: [(window number, applied window writes,
    version required)], and the windows' statistics."""
    ack_pos = []
    for v, size in acks:
        ack_pos.append((v, sum(1 for e in entries if e.end <= size)))
    write_indices = [i for i, e in enumerate(entries) if is_write(e)]
    images = {}
    stats = {"windows": 0, "sampled": 0, "largest": 0}
    for w, (start, end, writes) in enumerate(windows(entries)):
        stats["windows"] += 1
        stats["largest"] = max(stats["largest"], len(writes))
        required = max([v for v, pos in ack_pos if pos <= end], default=0)
        subs, full = subsets(writes, rng)
        stats["sampled"] += 0 if full else 1
        for s in subs:
            # A write the disk flagged FUA was durable once it completed:
            # every image that kept a later write keeps it too.
            if any(entries[i].flags & FUA and i not in s and any(j > i for j in s) for i in writes):
                continue
            k = key(start, s, write_indices)
            if k in images:
                images[k][2] = max(images[k][2], required)
            else:
                images[k] = [w, s, required]
    return sorted(images.values(), key=lambda x: (x[0], len(x[1]), x[1])), stats


def apply(image, log, entry):
    with open(image, "r+b") as f:
        f.seek(entry.sector * LOG_SECTOR)
        if entry.data is None:  # a discard: the range reads as zeros
            f.write(bytes(entry.sectors * LOG_SECTOR))
        else:
            log.seek(entry.data[0])
            f.write(log.read(entry.data[1]))


def copy(src, dst):
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", src, dst], check=True)


def record(args, name, cfg, work):
    """Boot once behind blklogwrites and commit; returns the log's path,
    the pristine image and [(version, log size at its ACK)]."""
    fs, opts, mode, size, commits, _must, provisioned = cfg
    base = os.path.join(work, "base.img")
    disk = os.path.join(work, "disk.img")
    log = os.path.join(work, "writes.log")
    with open(os.path.join(work, "mkfs.log"), "w") as mk:
        cut.mkfs(fs, base, size, mk, MKFS_EXTRA.get(fs, ()))
    if provisioned:
        provision(args, name, cfg, base, work)
    copy(base, disk)
    open(log, "wb").close()
    acks = []
    done = threading.Event()

    def on_line(line):
        m = cut.ACK.match(line)
        if m:
            acks.append((int(m.group(1)), os.path.getsize(log)))
            if len(acks) >= commits:
                done.set()

    drives = [
        "-blockdev", f"driver=file,node-name=disk,filename={disk}",
        "-blockdev", f"driver=file,node-name=log,filename={log}",
        "-blockdev", f"driver=blklogwrites,node-name=logged,file=disk,log=log,log-sector-size={LOG_SECTOR}",
        "-device", "virtio-blk-device,drive=logged",
    ]
    b = cut.Boot(args, cfg, disk, "run", 0, os.path.join(work, "record.log"), drives=drives,
                 extra=f" pc.pace={args.pace}", on_line=on_line)
    t0 = time.monotonic()
    while not done.is_set() and b.proc.poll() is None and time.monotonic() - t0 < args.boot_timeout:
        done.wait(0.2)
    lines = b.cut()
    os.unlink(disk)
    if len(acks) < commits:
        tail = "\n".join(lines[-15:])
        raise RuntimeError(f"{name}: {len(acks)} of {commits} commits acknowledged before the "
                           f"recording stopped; the console's last lines:\n{tail}")
    return log, base, acks, lines


def provision(args, name, cfg, image, work):
    """A first boot, not recorded: commit v=1, then cut the power (qemu's
    kill keeps every write the guest issued)."""
    b = cut.Boot(args, cfg, image, "run", 0, os.path.join(work, "provision.log"))
    deadline = time.monotonic() + args.boot_timeout
    try:
        while True:
            line = b.next_line(deadline)
            if line is None or cut.ACK.match(line):
                break
    except queue.Empty:
        line = None
    lines = b.cut()
    if not any(cut.ACK.match(l) for l in lines):
        raise RuntimeError(f"{name}: the provisioning boot acknowledged nothing; its last lines:\n"
                           + "\n".join(lines[-15:]))


def check_batch(args, cfg, work, batch, n):
    """One check boot for a batch of images; returns {serial: (verdict
    line, unmounted, lines)}."""
    drives = []
    for i, (img, _req, _desc) in enumerate(batch):
        drives += ["-drive", f"file={img},format=raw,if=none,id=d{i},cache=writeback",
                   "-device", f"virtio-blk-device,drive=d{i},serial=c{i}"]
    b = cut.Boot(args, cfg, None, "checkall", 0, os.path.join(work, f"check-{n:03d}.log"),
                 drives=drives, extra=f" pc.disks={len(batch)}")
    b.wait_exit(args.boot_timeout)
    out, cur = {}, None
    for line in b.all:
        if line.startswith("IMAGE "):
            cur = line.split()[1]
            out[cur] = [None, False, []]
        elif cur is not None:
            out[cur][2].append(line)
            if out[cur][0] is None and cut.VERDICT.match(line):
                out[cur][0] = line
            if line == f"UNMOUNTED {cur}":
                out[cur][1] = True
    if "CHECKED ALL" not in b.all:
        raise RuntimeError(f"check boot {n} did not finish (log: check-{n:03d}.log)")
    return out


def run_config(args, name, out_dir):
    cfg = CONFIGS[name]
    fs, opts, mode, _size, commits, must, provisioned = cfg
    work = os.path.join(out_dir, name.replace("/", "-"))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    say = lambda msg: print(f"[{name}] {msg}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    log_path, base, acks, rec_lines = record(args, name, cfg, work)
    entries = read_log(log_path)
    rng = random.Random(f"{args.seed}:{name}")
    images, stats = plan(entries, acks, rng)
    with open(os.path.join(work, "acks.json"), "w") as f:
        # Each ACK with the log's length when the host read it, and the
        # number of log entries that length held.
        json.dump([{"v": v, "log_bytes": size, "entries": sum(1 for e in entries if e.end <= size)}
                   for v, size in acks], f)
    if args.max_images and len(images) > args.max_images:
        images = sorted(rng.sample(images, args.max_images), key=lambda x: (x[0], len(x[1]), x[1]))
    log_kib = round(os.path.getsize(log_path) / 1024)
    writes = sum(1 for e in entries if is_write(e))
    flushes = sum(1 for e in entries if e.flags & FLUSH)
    say(f"recorded {len(acks)} commits: {len(entries)} log entries, {writes} writes, "
        f"{flushes} flushes, {log_kib} KiB; {len(images)} crash images "
        f"from {stats['windows']} windows ({stats['sampled']} sampled, largest {stats['largest']} writes)")
    verdicts, fsck_bad, unmount_bad, failures = {}, 0, 0, []
    wins = windows(entries)
    running = os.path.join(work, "running.img")
    copy(base, running)
    applied_upto = 0  # entries before this index are in `running`
    events = open(os.path.join(work, "images.jsonl"), "w")
    batch, n_boot = [], 0
    with open(log_path, "rb") as log:

        def flush_batch():
            nonlocal batch, n_boot, fsck_bad, unmount_bad
            if not batch:
                return
            n_boot += 1
            res = check_batch(args, cfg, work, batch, n_boot)
            for i, (img, req, desc) in enumerate(batch):
                line, unmounted, lines = res.get(f"c{i}", (None, False, []))
                verdict, found = cut.judge(line, req)
                fsck = cut.fsck(fs, img, img + ".fsck")
                if fsck.startswith("clean"):
                    os.unlink(img + ".fsck")
                else:
                    fsck_bad += 1
                if not unmounted:
                    unmount_bad += 1
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                ev = dict(desc, required=req, verdict=verdict, found=found, line=line,
                          fsck=fsck, unmounted=unmounted)
                events.write(json.dumps(ev) + "\n")
                if verdict != "ok" or not fsck.startswith("clean") or not unmounted:
                    failures.append(ev)
                    if len(failures) <= 5:
                        say(f"image {desc['image']} (window {desc['window']}, kept "
                            f"{desc['kept']}/{desc['window_writes']}): {verdict}: {line} "
                            f"(required v={req}); fsck {fsck}")
                    if args.keep_images:
                        continue
                os.unlink(img)
            batch = []

        for no, (w, subset, req) in enumerate(images, 1):
            start, end, wwrites = wins[w]
            # Bring the running image up to the window's start.
            while applied_upto < start:
                e = entries[applied_upto]
                if is_write(e):
                    apply(running, log, e)
                applied_upto += 1
            img = os.path.join(work, f"crash-{no:04d}.img")
            copy(running, img)
            for i in subset:
                apply(img, log, entries[i])
            batch.append((img, req, {"image": no, "window": w, "window_writes": len(wwrites),
                                     "kept": len(subset), "subset": list(subset)}))
            if len(batch) == BATCH:
                flush_batch()
                say(f"{no}/{len(images)} images checked, verdicts {verdicts}")
        flush_batch()
    events.close()
    os.unlink(running)
    if not args.keep_images:
        os.unlink(base)
        os.unlink(log_path)
    elapsed = time.monotonic() - t0
    bad = sum(v for k, v in verdicts.items() if k != "ok")
    enough = len(images) >= args.min_images
    passed = bad == 0 and fsck_bad == 0 and unmount_bad == 0
    if must == "fail":
        status = "expected failure seen" if bad else "expected failure NOT seen"
    elif must == "report":
        status = (f"reported: {len(failures)} of {len(images)} images damaged"
                  if failures else f"reported: all {len(images)} images held")
    else:
        status = "pass" if passed and enough else (
            f"FAIL: {len(images)} images, fewer than {args.min_images}" if passed else "FAIL")
    protocol = next((l.split("protocol=")[1] for l in rec_lines if l.startswith("FS ")), "?")
    result = {
        "config": name, "fs": fs, "opts": opts or "defaults", "mode": mode, "protocol": protocol,
        "commits": len(acks), "entries": len(entries), "writes": writes, "flushes": flushes,
        "log_kib": log_kib,
        "windows": stats["windows"], "sampled_windows": stats["sampled"],
        "largest_window": stats["largest"], "images": len(images), "verdicts": verdicts,
        "fsck_not_clean": fsck_bad, "not_unmounted": unmount_bad, "check_boots": n_boot,
        "seconds": round(elapsed, 1), "must": must, "provisioned": provisioned, "status": status,
        "failures": failures[:10],
    }
    with open(os.path.join(work, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    say(f"{status}: {len(images)} images, verdicts {verdicts}, fsck not clean {fsck_bad}, "
        f"{elapsed:.0f} s")
    return result


MUST_NOTE = {"pass": "", "fail": " (expected to fail)", "report": " (reported, not gating)"}


def report(args, results, path, wall):
    lines = [
        "# Write-cache report",
        "",
        f"Written by `{args.command or 'boards/powercut/run --cache'}` — seed {args.seed}, "
        f"{wall / 60:.1f} min wall time ({args.jobs} at a time).",
        f"Guest: `{os.path.basename(args.kernel)}`"
        + (f" (`{args.kernel_package}`)" if args.kernel_package else "")
        + " on `qemu-system-aarch64 -M virt -cpu cortex-a53` (TCG); its disk recorded "
        "by qemu's `blklogwrites` driver (dm-log-writes format, 512-byte sectors).",
        "",
        "One recording per configuration (fresh image, the torture program commits "
        f"*commits* versions, {args.pace} ms apart), then crash images replayed from "
        "the log: at each flush, everything before it plus a subset of the writes "
        f"issued since (every subset up to {FULL_WINDOW} writes; otherwise none, all, "
        f"each single write dropped and a seeded sample, at most {SAMPLE}); images "
        "with the same writes are one. Each image must hold every version "
        "acknowledged before the next flush: `ok` = at least that version and "
        "intact; `lost`, `torn`, `corrupt`, `missing` as in the power-cut report.",
        "",
        "| configuration | protocol | commits | writes | flushes | windows (sampled) | images | ok | lost | torn | corrupt | missing | other | fsck not clean | result |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        v = r["verdicts"]
        other = sum(n for k, n in v.items() if k not in ("ok", "lost", "torn", "corrupt", "missing"))
        lines.append(
            f"| {r['config']}{MUST_NOTE[r['must']]}{' ²' if r['provisioned'] else ''} | {r['protocol']} "
            f"| {r['commits']} | {r['writes']} | {r['flushes']} | {r['windows']} ({r['sampled_windows']}) "
            f"| {r['images']} | {v.get('ok', 0)} | {v.get('lost', 0)} | {v.get('torn', 0)} "
            f"| {v.get('corrupt', 0)} | {v.get('missing', 0)} | {other} | {r['fsck_not_clean']} "
            f"| {r['status']} |")
    lines += ["", "² Recorded from an image on which a first, unrecorded boot had already "
              "committed v=1: the state's directory and files existed before the recording "
              "began (their creation is the `-first-boot` configuration)."]
    lines += ["", "Checkers, run on every image after the guest's check mounted, recovered "
              "and unmounted it: " + "; ".join(
                  f"{fs}: `{' '.join(cut.FSCK[fs])}`" for fs in sorted({r['fs'] for r in results}))
              + ". vfat's dirty bit alone counts as clean (see the power-cut report).", ""]
    fails = [(r, f) for r in results for f in r["failures"][:3]]
    if fails:
        lines += ["## First failures per configuration", ""]
        for r, f in fails:
            kept = f['subset'][:6] + (["…"] if len(f['subset']) > 6 else [])
            lines.append(f"- {r['config']}: image {f['image']} (window {f['window']}, kept "
                         f"{f['kept']} of {f['window_writes']} writes: {', '.join(map(str, kept)) or 'none'}): "
                         f"{f['verdict']}, `{f['line']}`, required v={f['required']}; fsck {f['fsck']}")
        lines.append("")
    lines += [f"Logs, `images.jsonl` and `result.json`: `{os.path.relpath(args.out, args.repo)}/`.", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qemu", required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--kernel-package", default="")
    p.add_argument("--command", default="")
    p.add_argument("--initramfs-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--repo", default=".")
    p.add_argument("--report", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pace", type=int, default=200, help="ms after each ACK")
    p.add_argument("--commits", type=int, default=0, help="override the configurations' counts")
    p.add_argument("--min-images", type=int, default=200)
    p.add_argument("--max-images", type=int, default=0, help="check a seeded sample of at most this many")
    p.add_argument("--boot-timeout", type=float, default=600.0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--keep-images", action="store_true")
    p.add_argument("configs", nargs="+")
    args = p.parse_args()
    for c in args.configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration {c}; known: {', '.join(CONFIGS)}")
    if args.commits:
        for c in args.configs:
            CONFIGS[c] = CONFIGS[c][:4] + (args.commits,) + CONFIGS[c][5:]
    os.makedirs(args.out, exist_ok=True)
    t0 = time.monotonic()
    done, errors = cut.run_all(args.jobs, args.configs, lambda name: run_config(args, name, args.out))
    cut.conclude(args, done, errors, time.monotonic() - t0, report, "write-cache",
                 lambda r: r["status"] in ("pass", "expected failure seen")
                 or r["status"].startswith("reported"))


if __name__ == "__main__":
    main()
