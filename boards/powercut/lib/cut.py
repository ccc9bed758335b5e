#!/usr/bin/env python3
"""The host side of the power-cut board: boot, cut, boot again, judge.

For each configuration (filesystem, mount options, protocol) this makes a
fresh disk image on the host, then repeats N times:

  boot qemu-system-aarch64 (serial console on a pipe) with the image;
  read the torture program's verdict on what the previous cut left, and
  judge it against the highest version acknowledged so far;
  wait for the first `ACK v=N` of this boot;
  wait a random delay (seeded), then SIGKILL qemu: a power cut, the
  guest's page cache and everything it had not yet handed to the virtual
  disk are gone;
  read what qemu had printed before it died; the last complete ACK line
  is the new floor.

Then a clean check boot judges the last cut, unmounts cleanly and powers
off, and the host runs the filesystem's own checker read-only on the image.
Results: one JSON line per boot, a log per boot, and a Markdown report.
Called by boards/powercut/run, which fetches and builds what this needs.
"""

import argparse
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

MiB = 1 << 20

# name: (fs, mount options, torture mode, image MiB, expected to fail)
CONFIGS = {
    "ext4-ordered/replace": ("ext4", "data=ordered", "replace", 64, False),
    "ext4-writeback/replace": ("ext4", "data=writeback", "replace", 64, False),
    "xfs/replace": ("xfs", "", "replace", 320, False),
    "btrfs/replace": ("btrfs", "", "replace", 256, False),
    "f2fs/replace": ("f2fs", "", "replace", 128, False),
    "vfat/slots": ("vfat", "", "slots", 64, False),
    "ext4-ordered/journal": ("ext4", "data=ordered", "journal", 64, False),
    "f2fs/journal": ("f2fs", "", "journal", 128, False),
    # Replace on FAT: a rename there is three directory updates, so a cut
    # may leave the name missing, empty or torn. The harness must see it.
    "vfat/replace": ("vfat", "", "replace-forced", 64, True),
    # The litmus test of the harness itself: temporary file and rename with
    # no flush at all, acknowledged at once. A cut must lose acknowledged
    # versions (ext4 commits its journal every 5 s).
    "ext4-ordered/unsynced": ("ext4", "data=ordered", "unsynced", 64, True),
}

MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
    "f2fs": ["mkfs.f2fs", "-q", "-f"],
    "vfat": ["mkfs.vfat"],
}

FSCK = {
    "ext4": ["e2fsck", "-f", "-n"],
    "xfs": ["xfs_repair", "-n", "-f"],
    "btrfs": ["btrfs", "check", "--readonly"],
    "f2fs": ["fsck.f2fs", "-f", "--dry-run"],
    "vfat": ["fsck.vfat", "-n"],
}

VERDICT = re.compile(r"^(FOUND|MISSING|TORN|CORRUPT|ERROR)\b(.*)$")
ACK = re.compile(r"^ACK v=(\d+)$")
ORPHANS = re.compile(r"^RECOVER removed=(\d+)$")
JOURNAL = re.compile(r"^RECOVER journal bytes=(\d+) after=(\d+)$")
JOURNAL_HEADER = 32  # an empty journal: its header alone (docs/design.md, 6)
FOUND_V = re.compile(r"v=(\d+)")
# Kernel lines worth carrying into the report: filesystem errors,
# read-only remounts, I/O errors.
KERNEL_ALERT = re.compile(
    r"(error|corrupt|read-only|invalid|bad |fault|BUG|WARNING)", re.IGNORECASE)


class Boot:
    """One qemu run; its console lines arrive on a queue."""

    def __init__(self, args, cfg, image, phase, base, log_path, drives=None,
                 extra="", on_line=None):
        """`drives`: the qemu arguments of the disks (default: `image` as
        the one virtio disk); `extra`: more of the kernel command line;
        `on_line(line)`: called by the reader as each line arrives."""
        fs, opts, mode = cfg[:3]
        cmdline = (f"console=ttyAMA0 loglevel=5 panic=-1 pc.fs={fs} "
                   f"pc.mode={mode} pc.phase={phase} pc.base={base}{extra}")
        if opts:
            cmdline += f" pc.opts={opts}"
        if drives is None:
            drives = ["-drive", f"file={image},format=raw,if=none,id=d0,cache=writeback",
                      "-device", "virtio-blk-device,drive=d0"]
        self.cmd = [
            args.qemu, "-M", "virt", "-cpu", "cortex-a53", "-m", "512",
            "-nic", "none", "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot",
            "-kernel", args.kernel,
            "-initrd", os.path.join(args.initramfs_dir, f"initramfs-{fs}.cpio.gz"),
            "-append", cmdline,
        ] + drives
        self.on_line = on_line
        self.log = open(log_path, "w", encoding="utf-8", errors="replace")
        self.log.write("# " + " ".join(self.cmd) + "\n")
        self.lines = queue.Queue()
        self.all = []
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if self.on_line:
                    self.on_line(line)
                self.log.write(line + "\n")
                self.all.append(line)
                self.lines.put(line)
        # A line the power cut interrupted is not a line: an ACK counts
        # only once its newline went out.
        if buf:
            self.log.write("# partial line at the cut: %r\n" % buf)
        self.lines.put(None)

    def next_line(self, deadline):
        """The next complete line, or None at EOF; raises queue.Empty at
        the deadline."""
        return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))

    def cut(self):
        """SIGKILL: the power cut. Returns every line qemu printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=30)
        self.log.close()
        return self.all

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
        self.cut()
        return clean


def judge(line, floor):
    """The verdict on a boot's first verdict line, against the highest
    version acknowledged before the cut."""
    if line is None:
        return "noverdict", None
    m = VERDICT.match(line)
    word = m.group(1)
    if word == "FOUND":
        v = int(FOUND_V.search(line).group(1))
        if v < floor:
            return "lost", v
        return "ok", v
    if word == "MISSING":
        return ("ok", 0) if floor == 0 else ("missing", None)
    return {"TORN": "torn", "CORRUPT": "corrupt", "ERROR": "error"}[word], None


def mkfs(fs, image, size_mib, log, extra=()):
    if os.path.exists(image):
        os.unlink(image)
    with open(image, "wb") as f:
        f.truncate(size_mib * MiB)
    r = subprocess.run(MKFS[fs] + list(extra) + [image], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    log.write(r.stdout)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(MKFS[fs])} {image} failed:\n{r.stdout}")


def fsck(fs, image, log_path):
    r = subprocess.run(FSCK[fs] + [image], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    with open(log_path, "w") as f:
        f.write("# " + " ".join(FSCK[fs] + [image]) + f"\n# exit {r.returncode}\n")
        f.write(r.stdout)
    out = r.stdout
    dirty = r.returncode != 0
    if fs == "f2fs" and re.search(r"\[Fail\]", out, re.IGNORECASE):
        dirty = True
    note = ""
    if fs == "vfat" and r.returncode == 1:
        # Linux never clears FAT's dirty bit at unmount once a mount found
        # it set (fat_set_state: "Volume was not properly unmounted"), so
        # after any cut fsck.fat -n reports it and exits 1. That alone is
        # not damage; anything else it says is.
        real = [l for l in out.splitlines() if l.strip() and not re.match(
            r"^(fsck\.fat |Dirty bit is set|\s*Automatically removing dirty bit"
            r"|Leaving filesystem unchanged|.*: \d+ files, \d+/\d+ clusters)", l)]
        if not real:
            dirty, note = False, " (dirty bit only)"
    if dirty:
        problems = [l.strip() for l in out.splitlines()
                    if l.strip() and not l.startswith(("fsck.fat ", "e2fsck ", "Info:", "Phase", "Pass"))]
        return f"errors (exit {r.returncode}): {(problems[:1] or [''])[0][:80]}"
    return "clean" + note


def summarize(alerts):
    """Kernel alert lines, each distinct message once: how many boots
    printed it, and the first."""
    seen = {}
    for boot_no, msg in alerts:
        n, first = seen.get(msg, (0, boot_no))
        seen[msg] = (n + 1, first)
    return [f"{n}× (first in boot {first}): {msg}" for msg, (n, first) in seen.items()][:20]


def run_config(args, name, out_dir):
    cfg = CONFIGS[name]
    fs, opts, mode, size, expect_fail = cfg
    rng = random.Random(f"{args.seed}:{name}")
    safe = name.replace("/", "-")
    work = os.path.join(out_dir, safe)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    image = os.path.join(args.image_dir, f"{safe}.img")
    os.makedirs(args.image_dir, exist_ok=True)
    events = open(os.path.join(work, "cuts.jsonl"), "w")
    mklog = open(os.path.join(work, "mkfs.log"), "w")
    mkfs(fs, image, size, mklog)
    say = lambda msg: print(f"[{name}] {msg}", file=sys.stderr, flush=True)

    floor = 0          # highest version acknowledged so far
    verdicts = {}
    acks = 0           # commits acknowledged over the whole run
    reformats = 0
    alerts = []
    t_start = time.monotonic()
    cut_times = []
    first_ack_times = []
    boot = 0

    # Where the cuts landed, as the next boot saw it.
    landed = {"orphan": 0, "in_flight": 0, "tail_cut": 0, "compaction_finished": 0}

    def where(lines, verdict, found, floor):
        for l in lines:
            m = ORPHANS.match(l)
            if m and int(m.group(1)) > 0:
                landed["orphan"] += 1  # inside a Replace commit: temp file left
            m = JOURNAL.match(l)
            if m and int(m.group(2)) != int(m.group(1)):
                if int(m.group(2)) == JOURNAL_HEADER:
                    # The snapshot was written, the journal not yet reset:
                    # recovery finished the compaction the cut interrupted.
                    landed["compaction_finished"] += 1
                else:
                    landed["tail_cut"] += 1  # recovery cut a torn tail
        if verdict == "ok" and found is not None and found > floor:
            landed["in_flight"] += 1  # committed, ACK not yet out

    def record(ev):
        events.write(json.dumps(ev) + "\n")
        events.flush()

    def kernel_alerts(lines, boot_no):
        for l in lines:
            if not re.match(r"^(ACK|FOUND|MISSING|TORN|CORRUPT|ERROR|FS|RECOVER|MOUNTED|MKDIR|INSMOD|TORTURE|HALT|UNMOUNTED|#)", l) \
                    and KERNEL_ALERT.search(l):
                alerts.append((boot_no, re.sub(r"^\[\s*[\d.]+\]\s*", "", l.strip())[:160]))

    for cut_no in range(1, args.cuts + 1):
        boot += 1
        t0 = time.monotonic()
        b = Boot(args, cfg, image, "run", floor,
                 os.path.join(work, f"boot-{boot:03d}.log"))
        deadline = t0 + args.boot_timeout
        verdict_line, first_ack, last_ack, ended = None, None, None, None
        try:
            while True:
                line = b.next_line(deadline)
                if line is None:
                    ended = "qemu exited"
                    break
                if verdict_line is None and VERDICT.match(line):
                    verdict_line = line
                m = ACK.match(line)
                if m:
                    first_ack = int(m.group(1))
                    break
                if line.startswith(("TORTURE EXIT", "HALT", "FAIL")):
                    ended = line
                    break
        except queue.Empty:
            ended = f"no ACK within {args.boot_timeout} s"
        t_ack = time.monotonic()
        delay = rng.uniform(0.0, args.max_delay)  # drawn every cut: replays
        if first_ack is not None:
            first_ack_times.append(t_ack - t0)
            time.sleep(delay)
        lines = b.cut()
        t1 = time.monotonic()
        kernel_alerts(lines, boot)
        boot_acks = [int(m.group(1)) for m in map(ACK.match, lines) if m]
        if verdict_line is None:
            verdict_line = next((l for l in lines if VERDICT.match(l)), None)
        # The verdict judges the previous cut (the first boot: a fresh disk).
        verdict, found = judge(verdict_line, floor)
        prev = "fresh disk" if cut_no == 1 else f"cut {cut_no - 1}"
        if cut_no > 1:
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            where(lines, verdict, found, floor)
        elif verdict != "ok":
            verdicts["bad-start"] = verdicts.get("bad-start", 0) + 1
        ev = {"boot": boot, "judges": prev, "floor": floor, "verdict": verdict,
              "line": verdict_line, "found": found, "acks": len(boot_acks),
              "last_ack": boot_acks[-1] if boot_acks else None,
              "delay": round(delay, 3), "cut_at_s": round(t1 - t0, 2),
              "ended": ended}
        record(ev)
        if verdict != "ok":
            say(f"boot {boot}: {prev} -> {verdict}: {verdict_line} (floor {floor})")
        if verdict == "lost":
            floor = found  # the loss is counted once; go on from the disk
        acks += len(boot_acks)
        if boot_acks:
            floor = max(floor, boot_acks[-1])
            cut_times.append(t1 - t0)
        else:
            # Nothing acknowledged in this boot: the program could not go on
            # (a journal it cannot open, a filesystem that will not mount).
            # Start again on a fresh disk, and say so.
            reformats += 1
            say(f"boot {boot}: no ACK ({ended}); reformatting")
            mkfs(fs, image, size, mklog)
            floor = 0
        if cut_no % 10 == 0 or cut_no == args.cuts:
            say(f"{cut_no}/{args.cuts} cuts, {acks} acks, floor v={floor}, "
                f"verdicts {verdicts}")

    # The clean check boot: judge the last cut, unmount, power off.
    boot += 1
    t0 = time.monotonic()
    b = Boot(args, cfg, image, "check", floor,
             os.path.join(work, f"boot-{boot:03d}-check.log"))
    clean_exit = b.wait_exit(args.boot_timeout)
    lines = b.all
    kernel_alerts(lines, boot)
    verdict_line = next((l for l in lines if VERDICT.match(l)), None)
    verdict, found = judge(verdict_line, floor)
    verdicts[verdict] = verdicts.get(verdict, 0) + 1
    where(lines, verdict, found, floor)
    unmounted = "UNMOUNTED" in lines
    record({"boot": boot, "judges": f"cut {args.cuts}", "floor": floor,
            "verdict": verdict, "line": verdict_line, "found": found,
            "phase": "check", "unmounted": unmounted, "powered_off": clean_exit})
    if verdict != "ok":
        say(f"check boot: cut {args.cuts} -> {verdict}: {verdict_line} (floor {floor})")
    fsck_result = fsck(fs, image, os.path.join(work, "fsck.log"))
    if not unmounted:
        fsck_result += " (the check boot did not unmount cleanly)"
    elapsed = time.monotonic() - t_start
    bad = sum(n for k, n in verdicts.items() if k != "ok")
    passed = bad == 0 and fsck_result.startswith("clean") and unmounted and reformats == 0
    result = {
        "config": name, "fs": fs, "opts": opts or "defaults", "mode": mode,
        "cuts": args.cuts, "acks": acks, "final_version": found,
        "verdicts": verdicts, "reformats": reformats, "fsck": fsck_result,
        "landed": landed,
        "seconds": round(elapsed, 1),
        # Everything included: mkfs, boots, waits, the check boot, fsck.
        "s_per_cut": round(elapsed / args.cuts, 2),
        "s_boot_to_cut": round(sum(cut_times) / len(cut_times), 2) if cut_times else None,
        "s_to_first_ack": round(sum(first_ack_times) / len(first_ack_times), 2) if first_ack_times else None,
        "expected_failure": expect_fail,
        "status": ("expected failure seen" if not passed else "expected failure NOT seen")
        if expect_fail else ("pass" if passed else "FAIL"),
        "alerts": summarize(alerts), "alerts_total": len(alerts),
    }
    with open(os.path.join(work, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    events.close()
    mklog.close()
    if not args.keep_images:
        os.unlink(image)
    say(f"{result['status']}: {acks} acks, verdicts {verdicts}, fsck {fsck_result}, "
        f"{elapsed:.0f} s")
    return result


def report(args, results, path, wall):
    host = os.uname()
    lines = [
        "# Power-cut report",
        "",
        f"Written by `{args.command or 'boards/powercut/run'}` — {args.cuts} cuts per configuration, "
        f"seed {args.seed}, cut {0:.0f}–{args.max_delay:g} s after the first "
        f"acknowledgement of each boot; {wall / 60:.1f} min wall time "
        f"({args.jobs} at a time) on {host.machine} {host.sysname}.",
        f"Guest: `{os.path.basename(args.kernel)}`"
        + (f" (`{args.kernel_package}`)" if args.kernel_package else "")
        + " on `qemu-system-aarch64 -M virt "
        f"-cpu cortex-a53` (TCG), virtio disk (`cache=writeback`).",
        "",
        "A *cut* is a SIGKILL of qemu. The verdict on each cut comes from the next "
        "boot (the last from the clean check boot): `ok` = the version found is at "
        "least the last acknowledged one and intact; `lost` = older than the last "
        "acknowledgement; `torn` = parsed but not any version's content; "
        "`corrupt` = refused by fsatomic (empty, cut short, bad checksum); "
        "`missing` = no file after an acknowledgement.",
        "",
        "| configuration | cuts | acks | ok | lost | torn | corrupt | missing | other | fsck | s/cut | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in results:
        v = r["verdicts"]
        other = sum(n for k, n in v.items()
                    if k not in ("ok", "lost", "torn", "corrupt", "missing"))
        lines.append(
            f"| {r['config']}{' (expected to fail)' if r['expected_failure'] else ''} "
            f"| {r['cuts']} | {r['acks']} | {v.get('ok', 0)} | {v.get('lost', 0)} "
            f"| {v.get('torn', 0)} | {v.get('corrupt', 0)} | {v.get('missing', 0)} "
            f"| {other} | {r['fsck']} | {r['s_per_cut']} | {r['status']} |")
    lines += [
        "",
        "Where the cuts landed, as the next boot saw it: *temp file left* = inside a "
        "Replace commit, before its rename (recovery swept the orphan); *commit "
        "done, ACK not out* = the version found was newer than the last ACK the host "
        "read; *compaction finished* = the cut fell inside a journal compaction, "
        "after the new snapshot and before the journal's reset, and recovery "
        "finished it; *torn tail cut* = recovery cut a partly written record.",
        "",
        "| configuration | temp file left | commit done, ACK not out | compaction finished | torn tail cut | s to first ACK |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        d = r["landed"]
        lines.append(f"| {r['config']} | {d['orphan']} | {d['in_flight']} | "
                     f"{d['compaction_finished']} | {d['tail_cut']} | {r['s_to_first_ack']} |")
    lines += ["", "Checkers, run read-only on the image after the clean check boot: " + "; ".join(
        f"{fs}: `{' '.join(FSCK[fs])}`" for fs in sorted({r['fs'] for r in results})) + ".",
              "*s/cut* is the configuration's whole wall time (mkfs, every boot, the "
              "check boot, fsck) divided by its cuts."]
    lines += ["", "Mount options: " + "; ".join(
        f"{r['config']}: {r['opts']}" for r in results) + ".", ""]
    notes = [r for r in results if r["alerts"] or r["reformats"]]
    if notes:
        lines += ["## Kernel messages and restarts", ""]
        for r in notes:
            lines.append(f"- **{r['config']}**: {r['reformats']} reformat(s) after a boot "
                         f"that could not commit; {r['alerts_total']} kernel alert line(s)"
                         + (":" if r["alerts"] else "."))
            for a in r["alerts"][:8]:
                lines.append(f"  - `{a}`")
        lines.append("")
    lines += [f"Per-boot logs and `cuts.jsonl`: `{os.path.relpath(args.out, args.repo)}/`.", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qemu", required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--kernel-package", default="", help="for the report")
    p.add_argument("--command", default="", help="the command line, for the report")
    p.add_argument("--initramfs-dir", required=True)
    p.add_argument("--out", required=True, help="logs and results")
    p.add_argument("--image-dir", required=True)
    p.add_argument("--repo", default=".")
    p.add_argument("--report", required=True)
    p.add_argument("--cuts", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-delay", type=float, default=3.0)
    p.add_argument("--boot-timeout", type=float, default=180.0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--keep-images", action="store_true")
    p.add_argument("configs", nargs="+")
    args = p.parse_args()
    for c in args.configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration {c}; known: {', '.join(CONFIGS)}")
    if args.cuts < 1:
        raise SystemExit("--cuts must be at least 1")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.monotonic()
    results, errors = run_all(args.jobs, args.configs, lambda name: run_config(args, name, args.out))
    if errors:
        raise SystemExit("a configuration stopped before it finished (see above)")
    # A configuration that must fail passes when its failure was seen: a
    # harness that cannot see a tear or a lost commit proves nothing.
    conclude(args, results, [], time.monotonic() - t0, report, "powercut",
             lambda r: r["status"] in ("pass", "expected failure seen"))


def run_all(jobs, names, one):
    """`one(name)` for every name, `jobs` at a time: the results in the
    order of `names` (those that stopped left out), and why each stopped."""
    results = [None] * len(names)
    todo = list(enumerate(names))
    lock = threading.Lock()
    errors = []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i, name = todo.pop(0)
            try:
                results[i] = one(name)
            except (RuntimeError, OSError, subprocess.CalledProcessError, queue.Empty) as e:
                errors.append(f"{name}: {e}")
                print(f"[{name}] stopped: {e}", file=sys.stderr, flush=True)

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None], errors


def conclude(args, results, errors, wall, write_report, label, passed):
    """Write the report and `results.json`, print the report, name every
    configuration that did not pass, and exit 0 only if all did."""
    write_report(args, results, args.report, wall)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"run": vars(args), "wall_s": round(wall, 1), "results": results}, f, indent=2)
    failed = [r for r in results if not passed(r)]
    print(open(args.report).read())
    for r in failed:
        print(f"FAILED: {r['config']}: {r['status']}", file=sys.stderr)
    for e in errors:
        print(f"FAILED: {e}", file=sys.stderr)
    print(f"{label}: {len(results) - len(failed)} passed, {len(failed) + len(errors)} failed")
    sys.exit(1 if failed or errors else 0)


if __name__ == "__main__":
    main()
