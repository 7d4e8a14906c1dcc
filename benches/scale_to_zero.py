#!/usr/bin/env python3
"""Issue 9's scale measurement: N pods of a ReplicaSet start (time until
all run, the daemon's PSS, `get pods -o json` latency), then are scaled
to 0 while another pod's process is killed; prints how long that pod took
to be restarted and the slowest API call meanwhile (every exit used to
rescan /proc: 62 s and 74 s at 5,000 pods).

usage: benches/scale_to_zero.py PATH/TO/drover N
  PERF=1: perf record the daemon (not its keeper) on CPU during the
  scale, into ./perf.data; PERF=offcpu: where it sleeps instead
  (sched_switch with call graphs: `perf report --no-children`).
  KEEP_LOG=FILE: copy the daemon's log there before cleaning up.

Runs a daemon of its own in a temp dir; removes its pods and kills what
is left of them (by their working directory) at the end, then its
cgroups."""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "common"))
import leftovers  # noqa: E402

drover, n = os.path.abspath(sys.argv[1]), int(sys.argv[2])
d = tempfile.mkdtemp(prefix="drover-scale-")
sock = f"{d}/sock"
os.makedirs(f"{d}/units")
open(f"{d}/drover.toml", "w").write('backoff_initial = "200ms"\nbackoff_max = "1s"\n')

def api(path):
    s = socket.socket(socket.AF_UNIX); s.settimeout(120); s.connect(sock)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = b""
    while True:
        b = s.recv(1 << 16)
        if not b: break
        raw += b
    head, body = raw.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), body

def cli(*args):
    return subprocess.run([drover, "--socket", sock, *args], capture_output=True, text=True, check=True).stdout

log = open(f"{d}/daemon.log", "w")
daemon = subprocess.Popen([drover, "daemon", "--config", f"{d}/drover.toml", "--socket", sock,
    "--state-dir", f"{d}/state", "--units", f"{d}/units", "--log-dir", f"{d}/logs", "--node-name", "m"],
    stdout=log, stderr=log, start_new_session=True, cwd=d)
try:
    while True:
        try:
            if api("/v1/version")[0] == 200: break
        except OSError: time.sleep(0.05)
    open(f"{d}/rs.toml", "w").write(f'''kind = "ReplicaSet"
name = "many"
[spec]
replicas = {n}
[spec.selector]
match_labels = {{ app = "many" }}
[spec.template]
labels = {{ app = "many" }}
termination_grace_period = "5s"
[[spec.template.processes]]
name = "main"
command = ["sleep", "100000"]
''')
    open(f"{d}/solo.toml", "w").write('''kind = "Pod"
name = "solo"
[spec]
[[spec.processes]]
name = "main"
command = ["sleep", "100000"]
''')
    cli("apply", "-f", f"{d}/solo.toml")
    cli("apply", "-f", f"{d}/rs.toml")
    t = time.time()
    while True:
        pods = json.loads(api("/v1/pods")[1])["items"]
        running = [p for p in pods if p["status"]["processes"] and p["status"]["processes"][0].get("pid")]
        if len(running) == n + 1: break
        time.sleep(0.2)
    print(f"{n + 1} pods running after {time.time() - t:.1f}s")
    time.sleep(1)
    # The daemon's memory with N pods, and what a full listing costs.
    # drover's processes: the keeper (our child) and the daemon it runs.
    ours = {daemon.pid, json.loads(api("/v1/version")[1])["pid"]}
    pss = sum(int(l.split()[1]) for p in ours for l in open(f"/proc/{p}/smaps_rollup") if l.startswith("Pss:"))
    rss = sum(int(l.split()[1]) for p in ours for l in open(f"/proc/{p}/smaps_rollup") if l.startswith("Rss:"))
    lat = []
    for _ in range(10):
        a = time.time()
        subprocess.run([drover, "--socket", sock, "get", "pods", "-o", "json"], capture_output=True, check=True)
        lat.append(time.time() - a)
    lat.sort()
    print(f"daemon with {n + 1} pods: PSS {pss / 1024:.1f} MiB, RSS {rss / 1024:.1f} MiB; "
          f"`get pods -o json` median {lat[5] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms (10 calls)")
    solo = json.loads(api("/v1/pods/solo")[1])["status"]["processes"][0]["pid"]
    perf = None
    if os.environ.get("PERF"):
        # The daemon, not `daemon.pid`: that is its keeper, which only
        # waits (recording it shows a flat profile of nothing).
        target = str(json.loads(api("/v1/version")[1])["pid"])
        if os.environ["PERF"] == "offcpu":
            what = ["-e", "sched:sched_switch", "-g"]
        else:
            what = ["-F", "499", "--call-graph", "dwarf,16384"]
        perf = subprocess.Popen(["perf", "record", *what, "-p", target, "-o", "perf.data"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
    t0 = time.time()
    cli("scale", "rs", "many", "--replicas", "0")
    t_kill_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    os.kill(solo, signal.SIGKILL)
    t_kill = time.time()
    worst_api = 0.0
    restarted = respawned = None
    while True:
        a = time.time()
        st, body = api("/v1/pods/solo")
        worst_api = max(worst_api, time.time() - a)
        p = json.loads(body)["status"]["processes"][0]
        if restarted is None and p["restart_count"] == 1 and p.get("pid"):
            restarted = time.time() - t_kill
            # When the new process started, from the kernel (clock ticks
            # since boot, 10 ms): what the API shows comes later, by
            # however long the request waited, behind this script's own
            # 5,000-pod listings too.
            with open(f"/proc/{p['pid']}/stat") as f:
                ticks = int(f.read().rsplit(")", 1)[1].split()[19])
            respawned = ticks / os.sysconf("SC_CLK_TCK") - t_kill_boot
        a = time.time()
        st, body = api("/v1/pods?selector=app%3Dmany")
        worst_api = max(worst_api, time.time() - a)
        left = len(json.loads(body)["items"])
        if restarted is not None and left == 0: break
        if time.time() - t0 > 300: print("gave up"); break
        time.sleep(0.05)
    if perf:
        perf.send_signal(signal.SIGINT); perf.wait()
    print(f"solo's new process started {respawned * 1000:.0f} ms after its kill (/proc, 10 ms ticks; "
          f"seen through the API after {restarted * 1000:.0f} ms); "
          f"all {n} pods gone after {time.time() - t0:.1f}s; slowest API call meanwhile {worst_api * 1000:.0f} ms")
finally:
    try:
        cli("delete", "pod", "solo")
        cli("delete", "rs", "many")
    except Exception as e:
        print("cleanup via API failed:", e)
    time.sleep(2)
    os.killpg(daemon.pid, signal.SIGKILL); daemon.wait()
    if os.environ.get("KEEP_LOG"):
        log.flush()
        shutil.copy(f"{d}/daemon.log", os.environ["KEEP_LOG"])
    # Anything left of this run (its pods run in the temp dir), by pid,
    # then its daemon's cgroups.
    leftovers.kill_processes_under(d)
    leftovers.remove_cgroups(f"{d}/state")
    shutil.rmtree(d, ignore_errors=True)
