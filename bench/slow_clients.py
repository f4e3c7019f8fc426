#!/usr/bin/env python3
# Ubuzima Sync — MIT licence.
# Measures how a running ubuzima-server copes with slow and idle clients (docs/SECURITY.md):
#   slowloris  N connections sending their headers one byte per second: how many are still open
#              after T seconds, and whether a well-behaved request is still answered;
#   big_header one connection sending a 32 MiB header line: the server's RSS growth, and whether it
#              refuses it;
#   idle       N connections that connect and say nothing: how many are still open after T s,
#              and the latency of /v1/health meanwhile.
# The /v1/health checks come from 127.0.0.2: another client than the slow ones.
# usage: slow_clients.py HOST PORT SERVER_PID [--connections N] [--seconds T]
# Prints one JSON object. Standard library only.
import json
import os
import resource
import socket
import sys
import time


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def health_ms(host, port, timeout=5.0):
    # From another loopback address: "the others" a slow client must not lock out are other
    # clients (a cap per address is meant to refuse more from the same one).
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout, source_address=("127.0.0.2", 0)) as s:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if b" 200 " not in data.split(b"\r\n", 1)[0]:
                return None
    except OSError:
        return None
    return round((time.monotonic() - start) * 1000, 1)


def still_open(sock):
    try:
        sock.setblocking(False)
        data = sock.recv(1)
        return data != b""  # bytes (an answer) or nothing yet: open; b"": closed
    except BlockingIOError:
        return True
    except OSError:
        return False


def slowloris(host, port, n, seconds):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=2)
            socks.append(s)
        except OSError:
            break
    request = b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 1000
    for i in range(seconds):
        for s in socks:
            try:
                s.send(request[i:i + 1])
            except OSError:
                pass
        time.sleep(1)
    alive = sum(1 for s in socks if still_open(s))
    served = health_ms(host, port)
    for s in socks:
        s.close()
    return {"connections": len(socks), "seconds": seconds, "still_open": alive, "health_ms_during": served}


def big_header(host, port, pid):
    before = rss_kb(pid)
    sent = 0
    refused = False
    growth = 0
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nX-Big: ")
            block = b"a" * 65536
            for _ in range(512):  # 32 MiB
                s.sendall(block)
                sent += len(block)
            time.sleep(1)  # measured while the connection is still open
            growth = rss_kb(pid) - before
    except OSError:
        refused = True
    return {"sent_bytes": sent, "refused_before_32MiB": refused, "rss_growth_kb": growth}


def idle(host, port, n, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 64)), hard))
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, port), timeout=2))
        except OSError:
            break
    served = health_ms(host, port)
    time.sleep(seconds)
    alive = sum(1 for s in socks if still_open(s))
    for s in socks:
        s.close()
    return {"connections": len(socks), "seconds": seconds, "still_open": alive, "health_ms_during": served}


def main():
    host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n, seconds = 200, 20
    args = sys.argv[4:]
    for i in range(0, len(args) - 1, 2):
        if args[i] == "--connections":
            n = int(args[i + 1])
        elif args[i] == "--seconds":
            seconds = int(args[i + 1])
    out = {"slowloris": slowloris(host, port, n, seconds), "big_header": big_header(host, port, pid),
           "idle": idle(host, port, max(n, 1100), seconds), "health_ms_after": health_ms(host, port),
           "server_alive": os.path.exists("/proc/%d" % pid)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
