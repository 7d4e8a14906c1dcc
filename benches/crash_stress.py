#!/usr/bin/env python3
"""Issue 9's long stress mode (not in CI): the daemon is SIGKILLed at a
random moment during applies, scales and deletes, again and again (the
daemon D, not its keeper: the keeper starts the next D, as after a
crash), and after each restart the script checks that nothing
acknowledged was lost, nothing is duplicated and no process is left
unowned; Jobs run alongside, and no completed index may ever run twice.

usage: benches/crash_stress.py PATH/TO/drover [KILLS=200] [SEED]

What "acknowledged" means: the CLI exited 0. An operation whose CLI did
not (the daemon died under it) may or may not have happened: either
outcome is accepted, but nothing in between (a ReplicaSet with another
replica count, a half-deleted object).

Checked after every restart, once the daemon has converged (deadline 60 s):
- every ReplicaSet the script believes in exists with the replicas it was
  last acknowledged at (or the ambiguous new value), and no other exists;
- each has exactly that many pods, each with a live process;
- the processes of this run (`sleep 7777777`, found in /proc by their
  command line and working directory) are exactly the pods' processes:
  none unowned, none twice;
- Job pods append their index to a file when their work is done; an
  index written twice is a completed index run again.

Runs a daemon of its own in a temp dir and kills what is left of its pods
(by pid, found by their working directory) at the end. Exit status 1 if
any check failed."""
import json, os, random, shutil, signal, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "common"))
import leftovers  # noqa: E402

drover = os.path.abspath(sys.argv[1])
kills = int(sys.argv[2]) if len(sys.argv) > 2 else 200
seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(time.time())
rng = random.Random(seed)
MAGIC = "7777777"
MIN_SETS = 3

d = tempfile.mkdtemp(prefix="drover-stress-")
sock = f"{d}/sock"
os.makedirs(f"{d}/units")
os.makedirs(f"{d}/files")
os.makedirs(f"{d}/jobs")
open(f"{d}/drover.toml", "w").write('backoff_initial = "100ms"\nbackoff_max = "1s"\n')
daemon_log = open(f"{d}/daemon.log", "w")
daemon = None
failures = []


def api(path, timeout=30):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = b""
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        raw += b
    s.close()
    head, body = raw.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), body


def version_pid():
    try:
        st, body = api("/v1/version", 2)
        if st == 200:
            return json.loads(body)["pid"]
    except (OSError, ValueError, IndexError, KeyError):
        pass
    return None


daemon_pid = None


def start_daemon():
    """Starts `drover daemon` (its keeper K, which starts the daemon D)
    when none runs; then waits for a D other than the one before to
    answer: after a kill of D, K starts the next one itself."""
    global daemon, daemon_pid
    if daemon is None or daemon.poll() is not None:
        daemon = subprocess.Popen(
            [drover, "daemon", "--config", f"{d}/drover.toml", "--socket", sock,
             "--state-dir", f"{d}/state", "--units", f"{d}/units", "--log-dir", f"{d}/logs",
             "--node-name", "stress"],
            stdout=daemon_log, stderr=daemon_log, start_new_session=True, cwd=d)
    deadline = time.time() + 30
    while time.time() < deadline:
        pid = version_pid()
        if pid is not None and pid != daemon_pid:
            daemon_pid = pid
            return
        time.sleep(0.02)
    raise SystemExit("the daemon did not come up in 30 s; see " + f"{d}/daemon.log")


def kill_daemon():
    """SIGKILL of the daemon D, a crash: its keeper K starts the next.
    Only D's own pid: its pods must survive it."""
    try:
        os.kill(daemon_pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_all_daemons():
    """K first (it would start another D), then D."""
    if daemon is not None and daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    kill_daemon()


def cli_async(*args):
    return subprocess.Popen([drover, "--socket", sock, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rs_unit(name, replicas):
    path = f"{d}/files/{name}-{replicas}.toml"
    open(path, "w").write(f'''kind = "ReplicaSet"
name = "{name}"
[spec]
replicas = {replicas}
[spec.selector]
match_labels = {{ app = "{name}" }}
[spec.template]
labels = {{ app = "{name}" }}
termination_grace_period = "2s"
[[spec.template.processes]]
name = "main"
command = ["sleep", "{MAGIC}"]
''')
    return path


def job_unit(name):
    path = f"{d}/files/{name}.toml"
    open(path, "w").write(f'''kind = "Job"
name = "{name}"
[spec]
completions = 3
parallelism = 2
completion_mode = "Indexed"
[spec.template]
labels = {{ job = "{name}" }}
restart_policy = "OnFailure"
[[spec.template.processes]]
name = "main"
command = ["/bin/sh", "-c", "sleep 0.3; echo ${{JOB_COMPLETION_INDEX}} >> {d}/jobs/{name}.done"]
''')
    return path


def our_processes():
    pids = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        if cmd[:2] == [b"sleep", MAGIC.encode()] and cwd.startswith(d):
            pids.add(int(pid))
    return pids


# name -> set of acceptable replica counts (one value once acknowledged)
believed = {}
# names whose existence is ambiguous (a create or delete whose CLI failed)
maybe_exists = set()
jobs = []
counter = 0


def pick_op():
    global counter
    names = sorted(believed)
    r = rng.random()
    # Keep a few ReplicaSets alive: scales and deletes need something to
    # act on, and the kills must land among running processes.
    if len(names) < MIN_SETS or r < 0.3:
        counter += 1
        name = f"rs{counter}"
        n = rng.randint(1, 4)
        return ("create", name, n, ["apply", "-f", rs_unit(name, n)])
    if r < 0.45:
        counter += 1
        name = f"job{counter}"
        return ("job", name, None, ["apply", "-f", job_unit(name)])
    name = rng.choice(names)
    if r < 0.8:
        n = rng.randint(0, 5)
        return ("scale", name, n, ["scale", "rs", name, "--replicas", str(n)])
    return ("delete", name, None, ["delete", "rs", name])


def record(op, name, n, acked):
    if op == "job":
        jobs.append(name)
    elif op == "create":
        if acked:
            believed[name] = {n}
            maybe_exists.discard(name)
        else:
            believed[name] = {n}
            maybe_exists.add(name)
    elif op == "scale":
        believed[name] = {n} if acked else believed[name] | {n}
    elif op == "delete":
        if acked:
            believed.pop(name, None)
            maybe_exists.discard(name)
        else:
            maybe_exists.add(name)


def converged_view():
    """Waits until the daemon's view settles, then checks it; returns the
    list of problems found (empty when every check holds)."""
    deadline = time.time() + 60
    last = None
    while time.time() < deadline:
        problems = []
        rsets = {r["metadata"]["name"]: r for r in json.loads(api("/v1/replicasets")[1])["items"]}
        pods = json.loads(api("/v1/pods")[1])["items"]
        for name, ok in believed.items():
            if name not in rsets:
                if name not in maybe_exists:
                    problems.append(f"ReplicaSet {name} acknowledged but missing")
                continue
            want = rsets[name]["spec"]["replicas"]
            if want not in ok:
                problems.append(f"ReplicaSet {name} has replicas {want}, acknowledged {sorted(ok)}")
        for name in rsets:
            if name not in believed and name not in maybe_exists:
                problems.append(f"ReplicaSet {name} exists but its delete was acknowledged")
        pod_pids = {}
        for name, r in rsets.items():
            mine = [p for p in pods if p["metadata"].get("labels", {}).get("app") == name]
            live = [p for p in mine if p["metadata"].get("deletion_timestamp") is None]
            running = [p for p in live if p["status"]["processes"] and p["status"]["processes"][0].get("pid")]
            if len(live) != r["spec"]["replicas"] or len(running) != len(live) or len(mine) != len(live):
                problems.append(f"ReplicaSet {name}: {len(running)} running of {len(live)} pods "
                                f"({len(mine)} with terminating), wants {r['spec']['replicas']}")
            for p in running:
                pod_pids[p["status"]["processes"][0]["pid"]] = p["metadata"]["name"]
        procs = our_processes()
        unowned = procs - set(pod_pids)
        missing = set(pod_pids) - procs
        if unowned:
            problems.append(f"unowned processes: {sorted(unowned)}")
        if missing:
            problems.append(f"pods whose process is gone: {[pod_pids[p] for p in missing]}")
        if not problems:
            # The ambiguous ones have settled into one outcome.
            for name in list(maybe_exists):
                if name in rsets:
                    believed[name] = {rsets[name]["spec"]["replicas"]}
                else:
                    believed.pop(name, None)
                maybe_exists.discard(name)
            for name in believed:
                believed[name] = {rsets[name]["spec"]["replicas"]}
            return []
        last = problems
        time.sleep(0.2)
    return last


def job_reruns():
    problems = []
    for name in jobs:
        try:
            lines = open(f"{d}/jobs/{name}.done").read().split()
        except FileNotFoundError:
            continue
        for i in set(lines):
            if lines.count(i) > 1:
                problems.append(f"Job {name}: index {i} completed {lines.count(i)} times")
    return problems


def cli_latency():
    """How long a CLI call takes on this machine (a debug build under load
    can take longer than the whole kill window): the kills are spread over
    this plus 150 ms, so they land before, during and after the daemon
    handles the request, not only before the CLI even connected."""
    times = []
    for _ in range(5):
        t = time.time()
        subprocess.run([drover, "--socket", sock, "get", "replicasets"], capture_output=True)
        times.append(time.time() - t)
    return sorted(times)[2]


started = time.time()
acked = 0
finished = False  # the run went to its end (else keep the evidence)
try:
    start_daemon()
    latency = cli_latency()
    print(f"CLI round trip {latency * 1000:.0f} ms: kills at 0 to {(latency + 0.15) * 1000:.0f} ms", flush=True)
    for k in range(1, kills + 1):
        op, name, n, args = pick_op()
        proc = cli_async(*args)
        time.sleep(rng.uniform(0, latency + 0.15))
        kill_daemon()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        record(op, name, n, proc.returncode == 0)
        acked += proc.returncode == 0
        start_daemon()
        problems = converged_view()
        if problems:
            failures.append((k, op, name, problems))
            print(f"kill {k} ({op} {name}): " + "; ".join(problems), flush=True)
        if k % 20 == 0:
            print(f"{k} kills, {len(believed)} ReplicaSets, {len(jobs)} Jobs, "
                  f"{len(our_processes())} processes, {time.time() - started:.0f}s", flush=True)
    # Let the Jobs finish, then look for indexes run twice.
    deadline = time.time() + 120
    while time.time() < deadline:
        items = json.loads(api("/v1/jobs")[1])["items"]
        if all(j["status"].get("succeeded", 0) + j["status"].get("failed", 0) >= 3
               or any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                      for c in j["status"].get("conditions", []))
               for j in items):
            break
        time.sleep(0.5)
    reruns = job_reruns()
    for r in reruns:
        print(r)
    print(f"seed {seed}: {kills} daemon SIGKILLs in {time.time() - started:.0f}s "
          f"({acked} operations acknowledged before the kill); "
          f"{len(failures)} checks failed; {len(reruns)} Job indexes run twice")
    finished = True
finally:
    try:
        if daemon is not None and daemon.poll() is None:
            for name in list(believed) + list(maybe_exists):
                subprocess.run([drover, "--socket", sock, "delete", "rs", name], capture_output=True)
        stop_all_daemons()
    except Exception as e:
        print("cleanup via the API failed:", e)
    # Anything left of this run (its pods run in the temp dir), by pid,
    # then its daemon's cgroups.
    leftovers.kill_processes_under(d)
    leftovers.remove_cgroups(f"{d}/state")
    if failures or job_reruns() or not finished:
        print(f"kept {d} for inspection (daemon.log)")
        sys.exit(1)
    shutil.rmtree(d, ignore_errors=True)
