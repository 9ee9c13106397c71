"""A single-node Slurm cluster of its own, for tests: Debian's slurm-wlm
and munge, started by hand (munged, slurmctld, slurmd) from a generated
slurm.conf (this machine's host name and CPU count, ports of its own, all
state in a temporary folder), stopped by PID. Installs the packages when
missing (apt-get; needs root).

    with LocalSlurm() as cluster:
        subprocess.run(["sbatch", ...], env=cluster.env)
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

PACKAGES = {"slurmctld": "slurm-wlm", "slurmd": "slurm-wlm", "sbatch": "slurm-client", "munged": "munge"}


def install():
    missing = sorted({pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None and
                      not os.path.exists(f"/usr/sbin/{tool}")})
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self):
        install()
        self.dir = tempfile.mkdtemp(prefix="slurm-test-")
        os.chmod(self.dir, 0o755)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 2
        self.procs = []
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)

    def path(self, name):
        return os.path.join(self.dir, name)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        # munge: a key of its own, a socket in the folder.
        key = self.path("munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        munge_dir = self.path("munge")
        os.makedirs(munge_dir, mode=0o755)
        self.socket = os.path.join(munge_dir, "munge.sock")
        self.spawn(["munged", "-F", "--key-file", key, "--socket", self.socket, "--pid-file", self.path("munged.pid"),
                    "--log-file", self.path("munged.log"), "--seed-file", self.path("munge.seed"), "--force"])
        self.wait_for(lambda: os.path.exists(self.socket), "munged's socket")
        for folder in ("state", "spool"):
            os.makedirs(self.path(folder))
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=gradetest
SlurmctldHost={self.host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.socket}
CredType=cred/munge
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={self.path('state')}
SlurmdSpoolDir={self.path('spool')}
SlurmctldPidFile={self.path('slurmctld.pid')}
SlurmdPidFile={self.path('slurmd.pid')}
SlurmctldLogFile={self.path('slurmctld.log')}
SlurmdLogFile={self.path('slurmd.log')}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={self.host} CPUs={self.cpus} State=UNKNOWN
PartitionName=grade Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        self.spawn(["slurmctld", "-D", "-i", "-f", self.conf])
        self.wait_for(lambda: self.run(["scontrol", "ping"]).returncode == 0, "slurmctld")
        self.spawn(["slurmd", "-D", "-f", self.conf])
        self.wait_for(lambda: "idle" in self.run(["sinfo", "-h", "-o", "%T"]).stdout, "an idle node")

    def spawn(self, argv):
        log = open(self.path(os.path.basename(argv[0]) + ".out"), "w")
        self.procs.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def run(self, argv):
        return subprocess.run(argv, env=self.env, capture_output=True, text=True)

    def wait_for(self, condition, what, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}) while waiting for {what}; "
                                       f"see {self.dir}")
            time.sleep(0.3)
        raise RuntimeError(f"no {what} after {seconds} s; see {self.dir}")

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
