#!/usr/bin/env python3
"""Opens N TCP connections to HOST:PORT and keeps them half-open (a request
line and one header, never finished) until stdin closes or --hold seconds
pass; prints how many connected. For the bounded-listener tests only: it
targets 127.0.0.1 or a test namespace's own addresses.

    flood.py HOST PORT N [--hold S] [--send BYTES] [--from ADDR] [--ignore-stdin]

--ignore-stdin: hold for S seconds or until killed (a background job's stdin
is /dev/null, which would end the hold at once).
"""
import socket, sys, time

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hold = float(sys.argv[sys.argv.index('--hold') + 1]) if '--hold' in sys.argv else 30.0
send = sys.argv[sys.argv.index('--send') + 1].encode() if '--send' in sys.argv else b'POST /v1/vms HTTP/1.1\r\nHost: x\r\n'
src = (sys.argv[sys.argv.index('--from') + 1], 0) if '--from' in sys.argv else None
socks, refused = [], 0
deadline = time.monotonic() + hold
for i in range(n):
    if time.monotonic() > deadline:
        break
    try:
        s = socket.create_connection((host, port), timeout=2, source_address=src)
        if send:
            s.sendall(send)
        socks.append(s)
    except OSError:
        refused += 1
print('connected=%d refused=%d' % (len(socks), refused), flush=True)
# Hold them until told to stop (stdin closes, or a signal) or the time is up.
import select
watch = [] if '--ignore-stdin' in sys.argv else [sys.stdin]
while time.monotonic() < deadline:
    r, _, _ = select.select(watch, [], [], max(0.0, min(1.0, deadline - time.monotonic())))
    if r and not sys.stdin.readline():
        break
for s in socks:
    s.close()
