#!/bin/bash
# Records real QEMU migration streams, channel by channel, for the parser
# tests and for docs/qemu-stream.md.
#
#   scripts/record-qemu-stream.sh [--guest ELF] [--zstd] [--case NAME]... OUTDIR
#
# For each case it starts a source QEMU (TCG, machine pc, 64 MiB, the test
# guest booted with a small mixed fill and a slow dirty rate; without
# --guest, QEMU runs only its firmware) and a target QEMU with the same
# command line plus -incoming defer, and migrates between them through a
# recording proxy on a unix socket. The proxy forwards every connection
# the source opens to the target in accept order, and writes each
# direction to a file named by the channel's first bytes:
#
#   OUTDIR/CASE/main.bin      main channel, source -> target ("QEVM")
#   OUTDIR/CASE/main.rp.bin   main channel, target -> source (return path)
#   OUTDIR/CASE/mfdN.bin      multifd channel N (id byte 24 of its initial packet)
#   OUTDIR/CASE/chanK.bin     any other channel, K = accept order (postcopy preempt)
#   OUTDIR/CASE/meta.json     QEMU version, command line, capabilities,
#                             parameters, and both sides' final status
#
# Since the target QEMU loaded each stream, every recording is one QEMU
# accepted. With --zstd each .bin is replaced by .bin.zst (zstd -19).
#
# Cases: single (one channel), multifd (2 channels, zero-page-detection
# multifd), multifd-legacy (2 channels, zero pages found by the main
# thread), multifd-zstd (2 channels, zstd), postcopy-preempt (post-copy
# with the preempt channel, started at once). Default: all of them.
#
# Run it under the e2e lock, one QEMU pair at a time:
#   flock /tmp/ferry-e2e.lock scripts/record-qemu-stream.sh --guest BUILD/guest/ferry-guest.elf --zstd OUT
# Exit 77 when qemu-system-x86_64 or python3 is missing. Every QEMU it
# starts is killed by pid when it ends, whatever happens.

set -u

for tool in qemu-system-x86_64 python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool not installed" >&2
		exit 77
	fi
done

exec python3 - "$@" <<'PY'
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

CASES = {
    "single": {"caps": {}, "params": {}},
    "multifd": {"caps": {"multifd": True},
                "params": {"multifd-channels": 2, "zero-page-detection": "multifd"}},
    "multifd-legacy": {"caps": {"multifd": True},
                       "params": {"multifd-channels": 2, "zero-page-detection": "legacy"}},
    "multifd-zstd": {"caps": {"multifd": True},
                     "params": {"multifd-channels": 2, "multifd-compression": "zstd"}},
    # Slow in both phases, so that the guest faults on pages not sent yet
    # and the target asks for them: those go on the preempt channel.
    "postcopy-preempt": {"caps": {"postcopy-ram": True, "postcopy-preempt": True},
                         "params": {"max-bandwidth": 1 << 20, "max-postcopy-bandwidth": 1 << 20},
                         "postcopy": True},
}
# Every case: a slow link, so that the guest dirties pages while the first
# pass runs and later passes have something to send.
COMMON_PARAMS = {"max-bandwidth": 4 << 20, "downtime-limit": 100}
SOURCE_ONLY = ("max-bandwidth", "max-postcopy-bandwidth", "downtime-limit")
GUEST_APPEND = "fill=1 profile=mix mix=50,45,5 dirty=1 hb=0"
MEM_MIB = 64


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Qmp:
    """One QMP connection: a command is one line out, its answer the next
    line holding "return" or "error"; events are skipped."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    die("no QMP socket at " + path)
                time.sleep(0.05)
        self.s.settimeout(30)
        self.buf = b""
        self.line()  # greeting
        self.cmd("qmp_capabilities")

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                die("QMP closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return json.loads(ln)

    def cmd(self, name, args=None):
        m = {"execute": name}
        if args:
            m["arguments"] = args
        self.s.sendall(json.dumps(m).encode() + b"\n")
        while True:
            r = self.line()
            if "error" in r:
                die("%s: %s" % (name, r["error"].get("desc")))
            if "return" in r:
                return r["return"]


class Proxy:
    """Accepts the source's connections on a unix socket, connects each to
    the target (in accept order) and records both directions."""

    def __init__(self, listen, target, outdir):
        self.target, self.outdir, self.n = target, outdir, 0
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ls.bind(listen)
        self.ls.listen(16)
        self.threads, self.files = [], []
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            k = self.n
            self.n += 1
            d = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            d.connect(self.target)
            fwd = os.path.join(self.outdir, "conn%d.fwd" % k)
            rev = os.path.join(self.outdir, "conn%d.rev" % k)
            self.files.append((k, fwd, rev))
            for a, b, path in ((c, d, fwd), (d, c, rev)):
                t = threading.Thread(target=self.pump, args=(a, b, path), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def pump(src, dst, path):
        with open(path, "wb") as f:
            while True:
                try:
                    data = src.recv(1 << 17)
                except OSError:
                    data = b""
                if not data:
                    break
                f.write(data)
                try:
                    dst.sendall(data)
                except OSError:
                    break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def finish(self, deadline):
        self.ls.close()
        for t in self.threads:
            t.join(max(0.1, deadline - time.time()))
        names = []
        for k, fwd, rev in self.files:
            with open(fwd, "rb") as f:
                head = f.read(32)
            if head[:4] == b"QEVM":
                name = "main"
            elif head[:4] == b"\x11\x22\x33\x44" and len(head) > 24:
                name = "mfd%d" % head[24]
            else:
                name = "chan%d" % k
            os.rename(fwd, os.path.join(self.outdir, name + ".bin"))
            if os.path.getsize(rev):
                os.rename(rev, os.path.join(self.outdir, name + ".rp.bin"))
            else:
                os.unlink(rev)
            names.append(name)
        return names


def qemu_cmd(guest, work, side):
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-m", str(MEM_MIB),
           "-nodefaults", "-display", "none", "-no-reboot",
           "-qmp", "unix:%s/%s.qmp,server=on,wait=off" % (work, side),
           "-serial", "file:%s/%s.serial" % (work, side)]
    if guest:
        cmd += ["-kernel", guest, "-append", GUEST_APPEND]
    if side == "dst":
        cmd += ["-incoming", "defer"]
    return cmd


def wait_ready(work, deadline):
    path = os.path.join(work, "src.serial")
    while time.time() < deadline:
        try:
            with open(path, "rb") as f:
                if b"FERRY-GUEST READY" in f.read():
                    return
        except OSError:
            pass
        time.sleep(0.05)
    die("guest did not print READY")


def run_case(name, case, guest, out, zstd):
    outdir = os.path.join(out, name)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    work = tempfile.mkdtemp(prefix="ferry-rec.")
    procs = []
    try:
        for side in ("src", "dst"):
            err = open(os.path.join(work, side + ".err"), "wb")
            procs.append(subprocess.Popen(qemu_cmd(guest, work, side), stderr=err,
                                          stdout=subprocess.DEVNULL))
        deadline = time.time() + 20
        src = Qmp(os.path.join(work, "src.qmp"), deadline)
        dst = Qmp(os.path.join(work, "dst.qmp"), deadline)
        if guest:
            wait_ready(work, deadline)
        caps = [{"capability": c, "state": v} for c, v in case["caps"].items()]
        params = dict(COMMON_PARAMS, **case["params"])
        for q in (src, dst):
            if caps:
                q.cmd("migrate-set-capabilities", {"capabilities": caps})
        for q in (src, dst):
            p = {k: v for k, v in params.items()
                 if q is src or k not in SOURCE_ONLY}
            q.cmd("migrate-set-parameters", p)
        dsock = os.path.join(work, "dst.sock")
        dst.cmd("migrate-incoming", {"uri": "unix:" + dsock})
        proxy = Proxy(os.path.join(work, "mig.sock"), dsock, outdir)
        src.cmd("migrate", {"uri": "unix:" + os.path.join(work, "mig.sock")})
        if case.get("postcopy"):
            # Let the first pass start, then switch: pages move by post-copy.
            time.sleep(0.1)
            src.cmd("migrate-start-postcopy")
        deadline = time.time() + 120
        while True:
            s = src.cmd("query-migrate")
            if s.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.time() > deadline:
                die("%s: migration still %s after 120 s" % (name, s.get("status")))
            time.sleep(0.1)
        while True:
            t = dst.cmd("query-migrate")
            if t.get("status") in ("completed", "failed") or time.time() > deadline:
                break
            time.sleep(0.1)
        st = dst.cmd("query-status")
        # Quit both QEMUs so that every channel reaches EOF before the
        # files are named.
        for q in (src, dst):
            try:
                q.cmd("quit")
            except SystemExit:
                pass
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        names = proxy.finish(time.time() + 10)
        ver = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
        meta = {"case": name, "qemu": ver, "cmdline": qemu_cmd(guest and "GUEST.elf", "WORK", "src"),
                "capabilities": case["caps"], "parameters": params,
                "postcopy_started": bool(case.get("postcopy")),
                "source": {k: s.get(k) for k in ("status", "ram", "total-time", "downtime")},
                "target_status": t.get("status"), "target_run_state": st.get("status"),
                "channels": sorted(names)}
        with open(os.path.join(outdir, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        if s.get("status") != "completed" or t.get("status") != "completed":
            die("%s: source %s, target %s" % (name, s.get("status"), t.get("status")))
        if zstd:
            for fn in sorted(os.listdir(outdir)):
                if fn.endswith(".bin"):
                    subprocess.run(["zstd", "-q", "-19", "--rm", "-f", os.path.join(outdir, fn)],
                                   check=True)
        sizes = {fn: os.path.getsize(os.path.join(outdir, fn)) for fn in sorted(os.listdir(outdir))}
        print("%s: %s" % (name, " ".join("%s=%d" % kv for kv in sizes.items())))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", help="ferry-guest.elf; without it QEMU runs its firmware only")
    ap.add_argument("--zstd", action="store_true", help="compress each recording with zstd -19")
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("outdir")
    a = ap.parse_args()
    if a.zstd and not shutil.which("zstd"):
        die("--zstd: zstd not installed")
    if a.guest and not os.access(a.guest, os.R_OK):
        die("guest kernel %s not readable" % a.guest)
    os.makedirs(a.outdir, exist_ok=True)
    for name in a.case or list(CASES):
        run_case(name, CASES[name], a.guest and os.path.abspath(a.guest), a.outdir, a.zstd)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
main()
PY
