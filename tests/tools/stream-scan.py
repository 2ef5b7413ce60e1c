#!/usr/bin/env python3
"""Walks recorded QEMU 10.0 migration channels and counts their records.

    tests/tools/stream-scan.py [--page-size N] [--chunk N] FILE...

Each FILE is one direction of one channel as scripts/record-qemu-stream.sh
writes it (raw, or .zst). What a file holds is told by its first bytes,
the same way ferry's agent tells channels apart:

  "QEVM"       the main channel: header, sections, RAM records, commands
  0x11223344   a multifd channel: initial packet, then packets + payloads
  *.rp.bin     a return path (target -> source) by its name
  otherwise    RAM records alone (the postcopy preempt channel)

The layouts are the ones docs/qemu-stream.md describes; this walker is the
proof that the document matches real bytes. It exits 1 (with the offset)
on anything it cannot parse, so a wrong statement in the document shows up
as a failure. Device state (SECTION_FULL of a device) has no length on the
wire: the walker skips it by finding its footer, a heuristic fit for a
checker reading a whole file, never for the relay (see the document).
"""

import argparse
import collections
import json
import struct
import subprocess
import sys

# Main channel (savevm.c, ram.c)
QEVM_MAGIC = 0x5145564D
QEVM_VERSION = 3
SEC_EOF, SEC_START, SEC_PART, SEC_END, SEC_FULL = 0, 1, 2, 3, 4
SEC_SUBSECTION, SEC_VMDESC, SEC_CONFIG, SEC_COMMAND, SEC_FOOTER = 5, 6, 7, 8, 0x7E
SEC_NAMES = {SEC_EOF: "EOF", SEC_START: "SECTION_START", SEC_PART: "SECTION_PART",
             SEC_END: "SECTION_END", SEC_FULL: "SECTION_FULL", SEC_VMDESC: "VMDESCRIPTION",
             SEC_CONFIG: "CONFIGURATION", SEC_COMMAND: "COMMAND", SEC_FOOTER: "FOOTER"}
CMD_NAMES = {0: "INVALID", 1: "OPEN_RETURN_PATH", 2: "PING", 3: "POSTCOPY_ADVISE",
             4: "POSTCOPY_LISTEN", 5: "POSTCOPY_RUN", 6: "POSTCOPY_RAM_DISCARD",
             7: "PACKAGED", 8: "ENABLE_COLO", 9: "POSTCOPY_RESUME", 10: "RECV_BITMAP",
             11: "SWITCHOVER_START"}
CMD_PACKAGED = 7

F_ZERO, F_MEM_SIZE, F_PAGE, F_EOS = 0x02, 0x04, 0x08, 0x10
F_CONTINUE, F_XBZRLE, F_HOOK, F_MULTIFD_FLUSH = 0x20, 0x40, 0x80, 0x200

# Multifd (multifd.c, multifd.h)
MFD_MAGIC = 0x11223344
MFD_VERSION = 1
MFD_INIT_LEN = 64
MFD_FLAG_SYNC = 0x1
MFD_COMP_MASK = 0x1F << 1
MFD_COMP_NAMES = {0: "nocomp", 1 << 1: "zlib", 2 << 1: "zstd", 4 << 1: "qpl",
                  8 << 1: "uadk", 16 << 1: "qatzip"}
MFD_FLAG_DEVICE_STATE = 32 << 1
MFD_PACKET_SIZE = 512 * 1024
MFD_FIXED = 12 + 4 + 4 + 4 + 8 + 4 + 4 + 24 + 256  # header without offset[]

# Return path (migration.c)
RP_NAMES = {0: "INVALID", 1: "SHUT", 2: "PONG", 3: "REQ_PAGES_ID", 4: "REQ_PAGES",
            5: "RECV_BITMAP", 6: "RESUME_ACK", 7: "SWITCHOVER_ACK"}


class Bad(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def left(self):
        return len(self.d) - self.o

    def take(self, n):
        if self.o + n > len(self.d):
            raise Bad("truncated: need %d bytes at offset %d, file has %d" % (n, self.o, len(self.d)))
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def u8(self):
        return self.take(1)[0]

    def be16(self):
        return struct.unpack(">H", self.take(2))[0]

    def be32(self):
        return struct.unpack(">I", self.take(4))[0]

    def be64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def name(self):
        return self.take(self.u8()).decode("latin-1")

    def peek(self):
        return self.d[self.o] if self.o < len(self.d) else None


class RamWalker:
    """RAM records of section "ram" (ram_save_* / ram_load_precopy): one
    be64 (offset | flags), then what the flags say. Keeps the RAMBlock
    list from MEM_SIZE and the current block for CONTINUE."""

    def __init__(self, page_size, chunk, counts, trace=None):
        self.ps, self.chunk, self.c, self.trace = page_size, chunk, counts, trace
        self.blocks = collections.OrderedDict()
        self.block = None
        self.seen = set()

    def record(self, r, start):
        if start // self.chunk != (r.o - 1) // self.chunk:
            self.c["ram: records split across %d KiB chunks" % (self.chunk // 1024)] += 1

    def walk(self, r, eof_ok=False):
        """Records up to and including EOS (or the end of the file, if
        eof_ok: the preempt channel ends without one)."""
        seq = []
        try:
            self.walk_records(r, eof_ok, seq)
        finally:
            if self.trace is not None:
                self.trace.append("    " + " ".join(seq))

    def walk_records(self, r, eof_ok, seq):
        def note(what):
            if seq and seq[-1].rsplit("x", 1)[0] == what:
                n = int(seq[-1].rsplit("x", 1)[1]) if "x" in seq[-1] else 1
                seq[-1] = "%sx%d" % (what, n + 1)
            else:
                seq.append(what)
        while True:
            if eof_ok and not r.left():
                self.c["ram: channel ended without EOS"] += 1
                return
            start = r.o
            h = r.be64()
            flags, addr = h & (self.ps - 1), h & ~(self.ps - 1)
            if flags == F_EOS:
                self.c["ram: EOS"] += 1
                note("EOS")
                return
            if flags == F_MULTIFD_FLUSH:
                self.c["ram: MULTIFD_FLUSH"] += 1
                note("MULTIFD_FLUSH")
                continue
            if flags == F_MEM_SIZE:
                self.mem_size(r, addr)
                note("MEM_SIZE(%d blocks)" % len(self.blocks))
                continue
            kind = flags & ~F_CONTINUE
            if kind not in (F_ZERO, F_PAGE, F_XBZRLE):
                raise Bad("unknown RAM flags 0x%x at offset %d" % (flags, start))
            if flags & F_CONTINUE:
                if self.block is None:
                    raise Bad("CONTINUE before any block name at offset %d" % start)
                self.c["ram: CONTINUE"] += 1
            else:
                self.block = r.name()
                self.c["ram: block name given"] += 1
            if self.blocks is not None and self.block not in self.blocks:
                raise Bad("page of unknown block %r at offset %d" % (self.block, start))
            if self.blocks is not None and addr + self.ps > self.blocks[self.block]:
                raise Bad("offset 0x%x beyond block %s" % (addr, self.block))
            key = (self.block, addr)
            if key in self.seen:
                self.c["ram: pages sent again"] += 1
            self.seen.add(key)
            note({F_ZERO: "ZERO", F_PAGE: "PAGE", F_XBZRLE: "XBZRLE"}[kind])
            if kind == F_ZERO:
                if r.u8() != 0:
                    raise Bad("ZERO record with a non-zero byte at offset %d" % (r.o - 1))
                self.c["ram: ZERO"] += 1
            elif kind == F_PAGE:
                page = r.take(self.ps)
                self.c["ram: PAGE"] += 1
                if page.count(0) == self.ps:
                    self.c["ram: PAGE that is all zero"] += 1
            else:
                if r.u8() != 1:
                    raise Bad("XBZRLE record without ENCODING_FLAG_XBZRLE at %d" % (r.o - 1))
                r.take(r.be16())
                self.c["ram: XBZRLE"] += 1
            self.c["ram: page records in block " + self.block] += 1
            self.record(r, start)

    def mem_size(self, r, total):
        self.c["ram: MEM_SIZE"] += 1
        left = total
        while left:
            name = r.name()
            length = r.be64()
            if length > left:
                raise Bad("MEM_SIZE: block %s of %d bytes overruns the total" % (name, length))
            self.blocks[name] = length
            left -= length
        self.c["ram: blocks in MEM_SIZE"] += len(self.blocks)


def skip_device_state(r, sid, counts):
    """Offline only: the end of a device's vmstate is the first footer
    0x7e + be32(section id) followed by something that can follow a
    section. The relay can never do this (it would need QEMU's vmstate
    descriptions); it passes device state through instead."""
    pat = bytes([SEC_FOOTER]) + struct.pack(">I", sid)
    o = r.o
    while True:
        i = r.d.find(pat, o)
        if i < 0:
            raise Bad("device section %d: no footer" % sid)
        nxt = r.d[i + 5] if i + 5 < len(r.d) else None
        if nxt in (SEC_FULL, SEC_EOF, SEC_COMMAND, SEC_START, SEC_PART, SEC_END):
            counts["main: device state bytes"] += i - r.o
            r.o = i
            return
        o = i + 1


def walk_main(data, a, counts):
    r = Reader(data)
    if r.be32() != QEVM_MAGIC:
        raise Bad("no QEVM magic")
    v = r.be32()
    if v != QEVM_VERSION:
        raise Bad("stream version %d (3 expected): a relay passes it through" % v)
    counts["main: header QEVM v3"] += 1
    trace = [] if a.trace else None
    ram = RamWalker(a.page_size, a.chunk, counts, trace)
    ids = {}
    try:
        walk_sections(r, a, counts, ram, ids, trace)
    finally:
        if trace:
            print("\n".join(collapse(trace)))
    counts["main: bytes"] += len(data)


def collapse(lines):
    """Runs of identical trace lines become one line with a count."""
    out = []
    for ln in lines:
        if out and out[-1][0] == ln:
            out[-1][1] += 1
        else:
            out.append([ln, 1])
    return [ln if n == 1 else "%s   (x%d)" % (ln, n) for ln, n in out]


def walk_sections(r, a, counts, ram, ids, trace):
    while r.left():
        start = r.o
        t = r.u8()
        counts["main: " + SEC_NAMES.get(t, "type 0x%02x" % t)] += 1

        def mark(what=""):
            if trace is not None:
                trace.append("%8d %s %s" % (start, SEC_NAMES.get(t, "0x%02x" % t), what))
        if t in (SEC_CONFIG, SEC_EOF):
            mark()
        if t == SEC_CONFIG:
            counts["main: machine " + r.take(r.be32()).decode()] += 1
            if r.peek() == SEC_SUBSECTION:
                r.u8()
                raise Bad("configuration subsection %r: not modelled here" % r.name())
        elif t in (SEC_START, SEC_FULL):
            sid = r.be32()
            idstr = r.name()
            inst, ver = r.be32(), r.be32()
            ids[sid] = idstr
            mark(idstr)
            if idstr == "ram":
                counts["main: ram section v%d instance %d" % (ver, inst)] += 1
                ram.walk(r)
            elif t == SEC_FULL:
                counts["main: device " + idstr] += 1
                skip_device_state(r, sid, counts)
            else:
                raise Bad("iterable section %r: its format is not the RAM one" % idstr)
        elif t in (SEC_PART, SEC_END):
            sid = r.be32()
            if ids.get(sid) != "ram":
                raise Bad("PART/END of section %d (%s)" % (sid, ids.get(sid)))
            mark(ids[sid])
            ram.walk(r)
        elif t == SEC_FOOTER:
            sid = r.be32()
            if sid not in ids:
                raise Bad("footer of unknown section %d at %d" % (sid, start))
        elif t == SEC_COMMAND:
            cmd, ln = r.be16(), r.be16()
            body = r.take(ln)
            counts["main: command " + CMD_NAMES.get(cmd, str(cmd))] += 1
            mark(CMD_NAMES.get(cmd, str(cmd)) + (" " + body.hex() if body and ln <= 16 else ""))
            if cmd == CMD_PACKAGED:
                inner = struct.unpack(">I", body)[0]
                counts["main: PACKAGED bytes"] += inner
                walk_packaged(r.take(inner), a, counts, ram, ids)
        elif t == SEC_EOF:
            if r.peek() == SEC_VMDESC:
                r.u8()
                desc = json.loads(r.take(r.be32()))
                counts["main: VMDESCRIPTION"] += 1
                counts["main: devices in VMDESCRIPTION"] += len(desc.get("devices", []))
            if r.left():
                raise Bad("%d bytes after EOF" % r.left())
        else:
            raise Bad("unknown section type 0x%02x at offset %d" % (t, start))


def walk_packaged(data, a, counts, ram, ids):
    """MIG_CMD_PACKAGED: a stream without the QEVM header (postcopy)."""
    r = Reader(data)
    while r.left():
        t = r.u8()
        counts["packaged: " + SEC_NAMES.get(t, "type 0x%02x" % t)] += 1
        if t == SEC_FULL:
            sid = r.be32()
            idstr = r.name()
            r.be32(), r.be32()
            ids[sid] = idstr
            skip_device_state(r, sid, counts)
        elif t == SEC_FOOTER:
            r.be32()
        elif t == SEC_COMMAND:
            cmd, ln = r.be16(), r.be16()
            r.take(ln)
            counts["packaged: command " + CMD_NAMES.get(cmd, str(cmd))] += 1
        elif t == SEC_EOF:
            if r.left():
                raise Bad("%d bytes after EOF in PACKAGED" % r.left())
        elif t in (SEC_PART, SEC_END):
            sid = r.be32()
            if ids.get(sid) != "ram":
                raise Bad("PACKAGED: PART/END of section %d (%s)" % (sid, ids.get(sid)))
            ram.walk(r)
        else:
            raise Bad("PACKAGED: section type 0x%02x" % t)


def walk_multifd(data, a, counts):
    r = Reader(data)
    magic, version = r.be32(), r.be32()
    uuid = r.take(16)
    cid = r.u8()
    rest = r.take(MFD_INIT_LEN - 25)
    if magic != MFD_MAGIC or version != MFD_VERSION:
        raise Bad("initial packet magic 0x%x version %d" % (magic, version))
    pfx = "mfd%d: " % cid
    counts[pfx + "initial packet (uuid %s)" % ("zero" if not any(uuid) else uuid.hex())] += 1
    if any(rest):
        raise Bad("initial packet: reserved bytes not zero")
    page_count = MFD_PACKET_SIZE // a.page_size
    packet_len = MFD_FIXED + 8 * page_count
    last_num = None
    comp_first = {}
    while r.left():
        start = r.o
        magic, version, flags = r.be32(), r.be32(), r.be32()
        if magic != MFD_MAGIC or version != MFD_VERSION:
            raise Bad("packet at %d: magic 0x%x version %d" % (start, magic, version))
        if flags & MFD_FLAG_DEVICE_STATE:
            r.take(256)
            r.be32()
            r.take(r.be32())
            counts[pfx + "device state packets"] += 1
            continue
        pages_alloc, normal, nxt = r.be32(), r.be32(), r.be32()
        num = r.be64()
        zero = r.be32()
        unused = r.take(4 + 24)
        block = r.take(256).split(b"\0", 1)[0].decode("latin-1")
        offs = struct.unpack(">%dQ" % page_count, r.take(8 * page_count))
        if r.o - start != packet_len:
            raise Bad("packet length")
        if any(unused):
            raise Bad("packet at %d: reserved fields not zero" % start)
        if any(offs[normal + zero:]):
            counts[pfx + "packets with stale offsets past the used ones"] += 1
        if last_num is not None and num <= last_num:
            raise Bad("packet_num %d after %d" % (num, last_num))
        last_num = num
        comp = flags & MFD_COMP_MASK
        if flags & MFD_FLAG_SYNC:
            counts[pfx + "SYNC packets"] += 1
            if normal or zero or nxt:
                counts[pfx + "SYNC packets carrying pages"] += 1
            if pages_alloc or block:
                counts[pfx + "SYNC packets with pages_alloc/ramblock set"] += 1
        else:
            counts[pfx + "page packets"] += 1
            if pages_alloc != page_count:
                raise Bad("pages_alloc %d (expected %d)" % (pages_alloc, page_count))
            counts[pfx + "packets of block " + block] += 1
        counts[pfx + "normal pages"] += normal
        counts[pfx + "zero pages"] += zero
        counts[pfx + "compression " + MFD_COMP_NAMES.get(comp, hex(comp))] += 1
        if normal and comp == 0 and nxt != normal * a.page_size:
            raise Bad("nocomp packet: next_packet_size %d for %d pages" % (nxt, normal))
        payload = r.take(nxt)
        counts[pfx + "payload bytes"] += nxt
        if comp and nxt:
            first = comp not in comp_first
            comp_first.setdefault(comp, True)
            zmagic = payload[:4] == b"\x28\xb5\x2f\xfd"
            if comp == 2 << 1:
                counts[pfx + "zstd payloads %s a frame header" % ("starting with" if zmagic else "without")] += 1
                if first and not zmagic:
                    raise Bad("first zstd payload has no frame header")
        if normal and comp == 0:
            for i in range(normal):
                if payload[i * a.page_size:(i + 1) * a.page_size].count(0) == a.page_size:
                    counts[pfx + "normal pages that are all zero"] += 1
        if start // a.chunk != (r.o - 1) // a.chunk:
            counts[pfx + "packets split across %d KiB chunks" % (a.chunk // 1024)] += 1
    counts[pfx + "bytes"] += len(data)


def walk_rp(data, counts):
    r = Reader(data)
    while r.left():
        t, ln = r.be16(), r.be16()
        r.take(ln)
        counts["rp: " + RP_NAMES.get(t, "type %d" % t)] += 1
    counts["rp: bytes"] += len(data)


def walk_ram_only(data, a, counts):
    """Postcopy preempt channel: RAM records against the block list that
    the main channel's MEM_SIZE gave (not checked here: one file only)."""
    r = Reader(data)
    ram = RamWalker(a.page_size, a.chunk, counts)
    ram.blocks = None
    ram.c = collections.Counter()
    while r.left():
        ram.walk(r, eof_ok=True)
    for k, v in ram.c.items():
        counts[k.replace("ram:", "preempt:")] += v
    counts["preempt: bytes"] += len(data)


def load(path):
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    with open(path, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--page-size", type=int, default=4096, help="target page size (x86: 4096)")
    ap.add_argument("--chunk", type=int, default=128 * 1024, help="relay chunk size for the split counts")
    ap.add_argument("--trace", action="store_true", help="print the main channel's sequence of items")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    rc = 0
    for path in a.files:
        counts = collections.Counter()
        data = load(path)
        try:
            if ".rp.bin" in path:
                walk_rp(data, counts)
            elif data[:4] == b"QEVM":
                walk_main(data, a, counts)
            elif data[:4] == struct.pack(">I", MFD_MAGIC):
                walk_multifd(data, a, counts)
            else:
                walk_ram_only(data, a, counts)
            status = "ok"
        except Bad as e:
            status = "FAILED: %s" % e
            rc = 1
        print("%s: %s" % (path, status))
        for k in sorted(counts):
            print("  %-58s %d" % (k, counts[k]))
    return rc


if __name__ == "__main__":
    sys.exit(main())
