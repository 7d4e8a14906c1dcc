"""What a Python bench's own drover daemon leaves behind, removed at its
end: processes (its pods run in the bench's temp dir) and the daemon's
cgroups. Shared by scale_to_zero.py and crash_stress.py."""
import os, signal


def kill_processes_under(d):
    """SIGKILL, by pid, every process whose working directory is under `d`
    (this one excepted)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(d):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def remove_cgroups(state_dir):
    """The cgroups of the daemon whose state dir is `state_dir`
    (`drover-<instance id>` below our own cgroup in each hierarchy, as the
    daemon made them), deepest first; only empty ones go (rmdir refuses
    the others). A daemon killed mid-removal leaves thousands, and they
    slow every later mkdir."""
    try:
        name = "drover-" + open(f"{state_dir}/instance-id").read().strip()
        own = [l.split(":", 2)[2].strip("/") for l in open("/proc/self/cgroup").read().splitlines()]
        for mount in os.listdir("/sys/fs/cgroup"):
            for base in own:
                root = os.path.join("/sys/fs/cgroup", mount, base, name)
                for sub, _, _ in sorted(os.walk(root), key=lambda w: -w[0].count("/")):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
    except OSError:
        pass
