#!/usr/bin/env python3
"""Kernel modules a filesystem needs, in load order, read from the .ko files.

Debian's kernel package has no modules.dep (depmod makes it at install
time, and we do not install), and the host may have no modinfo, so this
reads each module's `.modinfo` ELF section itself: `depends=` gives the
hard dependencies, `softdep=` the ones loaded by name at run time (ext4's
`pre: crc32c`). A softdep that names a crypto algorithm rather than a module
(crc32c) is resolved by the caller's extra roots (crc32c_generic).

    modules.py MODULES_DIR ROOT...    print the closure, dependencies first,
                                      one path relative to MODULES_DIR a line
"""

import os
import struct
import sys


def modinfo(path):
    """The key=value strings of a module's .modinfo section."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"{path}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            info = {}
            for item in data[off:off + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode("utf-8", "replace").split("=", 1)
                    info.setdefault(k, []).append(v)
            return info
    return {}


def index(moddir):
    """Module name (dashes as underscores) -> path relative to moddir."""
    found = {}
    for root, _dirs, files in os.walk(moddir):
        for f in files:
            if f.endswith(".ko"):
                name = f[:-3].replace("-", "_")
                found[name] = os.path.relpath(os.path.join(root, f), moddir)
    return found


def closure(moddir, roots):
    mods = index(moddir)
    order, seen = [], set()

    def visit(name, stack):
        name = name.replace("-", "_")
        if name in seen:
            return
        if name not in mods:
            if stack:  # a softdep naming an algorithm or a built-in: skip
                return
            raise SystemExit(f"no module {name} under {moddir}")
        if name in stack:
            return
        info = modinfo(os.path.join(moddir, mods[name]))
        deps = [d for v in info.get("depends", []) for d in v.split(",") if d]
        for soft in info.get("softdep", []):
            words = soft.split()
            if "pre:" in words:
                pre = words[words.index("pre:") + 1:]
                deps += [w for w in pre if not w.endswith(":")]
        for d in deps:
            visit(d, stack | {name})
        seen.add(name)
        order.append(mods[name])

    for r in roots:
        visit(r, frozenset())
    return order


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    for p in closure(sys.argv[1], sys.argv[2:]):
        print(p)
