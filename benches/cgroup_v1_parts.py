#!/usr/bin/env python3
"""What one pod's cgroup costs on a cgroup v1 host, part by part, as the
daemon pays it for a one-process pod (issue 13): mkdir of the pod's
cgroup in the pids hierarchy, open of its `tasks` file, a child's join
(a write of its pid), the same open and join into a cgroup already
populated (a restart), and rmdir once empty. Medians in microseconds.

usage: benches/cgroup_v1_parts.py [N]   (as root; N cgroups, default 300)

Works in a cgroup of its own under the pids hierarchy's root, named
after this process, and removes it; the children are `sleep`s it kills
and waits for. Python adds about a microsecond to each figure.
"""
import os
import statistics
import subprocess
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
base = f"/sys/fs/cgroup/pids/drover-parts-{os.getpid()}"


def timed(f, out):
    t = time.perf_counter_ns()
    r = f()
    out.append(time.perf_counter_ns() - t)
    return r


def join(d, opens, joins, procs):
    fd = timed(lambda: os.open(d + "/tasks", os.O_WRONLY), opens)
    p = subprocess.Popen(["sleep", "1000"])
    procs.append(p)
    timed(lambda: os.write(fd, str(p.pid).encode()), joins)
    os.close(fd)


figures = {k: [] for k in ["mkdir", "open", "join", "open again", "join again", "rmdir"]}
procs = []
os.mkdir(base)
try:
    dirs = [f"{base}/c{i}" for i in range(N)]
    for d in dirs:
        timed(lambda: os.mkdir(d), figures["mkdir"])
        join(d, figures["open"], figures["join"], procs)
        join(d, figures["open again"], figures["join again"], procs)
    for p in procs:
        p.kill()
        p.wait()
    procs = []
    for d in dirs:
        deadline = time.monotonic() + 5
        while True:
            try:
                timed(lambda: os.rmdir(d), figures["rmdir"])
                break
            except OSError:  # busy until the kernel is done with the exit
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
finally:
    for p in procs:
        p.kill()
        p.wait()
    for d in [f"{base}/c{i}" for i in range(N)]:
        try:
            os.rmdir(d)
        except OSError:
            pass
    os.rmdir(base)

print(", ".join(f"{k} {statistics.median(v) / 1000:.1f}" for k, v in figures.items()) + " (us, medians)")
