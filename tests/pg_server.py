"""A private, throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.

Standard library only. PostgreSQL refuses to run as root, so as root every server command
runs as the ``postgres`` user (created by the Debian package) in a temporary folder it owns.

    python tests/pg_server.py start STATE_DIR  # start one; print its DSN, write STATE_DIR/dsn
                                               # and the DSN of PgBouncer in front of it
                                               # (transaction pooling) to STATE_DIR/pgbouncer_dsn
    python tests/pg_server.py stop STATE_DIR   # stop both and delete their files

In tests, ``shared_dsn()`` gives ``$RUNSTORE_PG_DSN`` if set, otherwise starts one cluster
for this process (stopped at exit); ``shared_pgbouncer_dsn()`` gives ``$RUNSTORE_PGBOUNCER_DSN``
if set, otherwise a PgBouncer in transaction mode in front of this process's cluster. They
raise if PostgreSQL or PgBouncer is not installed: a run that wants them fails rather than
skips.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PREFIX = "runstore-pg-"
USER = "runstore"
DATABASE = "postgres"


def find_bindir() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian layout first, then PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "PostgreSQL is not installed (no initdb): run scripts/test, which installs the Debian "
        "package 'postgresql', or set RUNSTORE_PG_DSN to a server you own"
    )


def find_pgbouncer() -> Path:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(
            "PgBouncer is not installed: run scripts/test, which installs the Debian package "
            "'pgbouncer', or set RUNSTORE_PGBOUNCER_DSN to a PgBouncer you own"
        )
    return Path(found)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """One cluster: ``root/data`` (files), ``root/log`` (server log), ``root/port``."""

    def __init__(self, root: Path, bindir: Path) -> None:
        self.root = root
        self.bindir = bindir
        self.port = int((root / "port").read_text()) if (root / "port").exists() else 0
        self.options = ""  # more server options ("-c name=value ..."), on every start

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str, log_name: str = "log") -> None:
        program = Path(args[0]) if args[0].startswith("/") else self.bindir / args[0]
        command = [str(program), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.root / log_name
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}{tail}"
            )

    @classmethod
    def create(cls, bindir: Path | None = None) -> Cluster:
        """initdb in a new temporary folder, then start on a free port."""
        root = Path(tempfile.mkdtemp(prefix=PREFIX))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        cluster = cls(root, bindir or find_bindir())
        cluster._run(
            "initdb",
            "-D",
            str(root / "data"),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        cluster.start()
        return cluster

    def start(self) -> None:
        """Start the server (again), on the same port if it had one."""
        attempts = 1 if self.port else 5
        for attempt in range(attempts):
            port = self.port or free_port()
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
                " -c max_connections=300 -c fsync=off -c full_page_writes=off " + self.options
            )
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.root / "data"),
                    "-l",
                    str(self.root / "log"),
                    "-o",
                    options,
                )
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                continue  # another program took the port in between: try another
            self.port = port
            (self.root / "port").write_text(str(port))
            return

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` is a crash (recovery runs on next start)."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.root / "data"))

    @classmethod
    def standby_of(cls, primary: Cluster, name: str = "standby1") -> Cluster:
        """A streaming-replication standby of ``primary`` (``pg_basebackup -R``), started on a
        free port; it reports itself to the primary as ``name`` (for
        ``synchronous_standby_names``)."""
        root = Path(tempfile.mkdtemp(prefix=PREFIX))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        standby = cls(root, primary.bindir)
        standby._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            USER,
            "-D",
            str(root / "data"),
            "-R",  # standby.signal and primary_conninfo
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        standby.options = f"-c cluster_name={name}"
        standby.start()
        return standby

    def promote(self) -> None:
        """Make this standby a primary; returns once it accepts writes."""
        self._run("pg_ctl", "promote", "-w", "-t", "60", "-D", str(self.root / "data"))

    def destroy(self) -> None:
        self.stop_pgbouncer()
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- PgBouncer in front of this cluster (files in root/pgbouncer) --------------------

    @property
    def pgbouncer_dsn(self) -> str:
        port = (self.root / "pgbouncer" / "port").read_text()
        return f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"

    def start_pgbouncer(self, pool_mode: str = "transaction") -> str:
        """Start PgBouncer (as ``postgres`` when root) on a free loopback port, in front of this
        cluster; returns its DSN."""
        program = find_pgbouncer()
        folder = self.root / "pgbouncer"
        folder.mkdir(exist_ok=True)
        (folder / "users.txt").write_text(f'"{USER}" ""\n')
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        for attempt in range(5):
            port = free_port()
            (folder / "pgbouncer.ini").write_text(
                f"[databases]\n{DATABASE} = host=127.0.0.1 port={self.port} dbname={DATABASE}\n"
                "[pgbouncer]\n"
                f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
                f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
                f"pool_mode = {pool_mode}\nmax_client_conn = 1000\ndefault_pool_size = 40\n"
                f"logfile = {folder / 'log'}\npidfile = {folder / 'pid'}\n"
                f"admin_users = {USER}\n"
            )
            try:
                self._run(
                    str(program), "-d", str(folder / "pgbouncer.ini"), log_name="pgbouncer/log"
                )
                _wait_for_port(port, 30)
            except RuntimeError:
                self.stop_pgbouncer()
                if attempt == 4:
                    raise
                continue  # another program took the port in between: try another
            (folder / "port").write_text(str(port))
            return self.pgbouncer_dsn
        raise AssertionError("unreachable")

    def stop_pgbouncer(self) -> None:
        pidfile = self.root / "pgbouncer" / "pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGINT)  # "safe shutdown": waits for clients, we have none
            for _ in range(300):  # at most 30 s
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)


def _wait_for_port(port: int, seconds: float, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> None:
    """Destroy clusters left running by test processes that died without cleaning up."""
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        owner = root / "owner"
        with contextlib.suppress(OSError, ValueError):
            if owner.exists() and not _pid_alive(int(owner.read_text())):
                Cluster(root, find_bindir()).destroy()


_shared: Cluster | None = None


def shared_dsn() -> str:
    """``$RUNSTORE_PG_DSN``, or the DSN of this process's own throwaway cluster."""
    global _shared
    configured = os.environ.get("RUNSTORE_PG_DSN")
    if configured:
        return configured
    if _shared is None:
        reap_orphans()
        _shared = Cluster.create()
        (_shared.root / "owner").write_text(str(os.getpid()))
        atexit.register(_shared.destroy)
    return _shared.dsn


def shared_pgbouncer_dsn() -> str:
    """``$RUNSTORE_PGBOUNCER_DSN``, or PgBouncer (transaction pooling) in front of this
    process's own throwaway cluster."""
    configured = os.environ.get("RUNSTORE_PGBOUNCER_DSN")
    if configured:
        return configured
    if _shared is None or os.environ.get("RUNSTORE_PG_DSN"):
        if os.environ.get("RUNSTORE_PG_DSN"):
            raise RuntimeError("RUNSTORE_PG_DSN is set: set RUNSTORE_PGBOUNCER_DSN as well")
        shared_dsn()
    assert _shared is not None
    if not (_shared.root / "pgbouncer" / "port").exists():
        _shared.start_pgbouncer()
    return _shared.pgbouncer_dsn


# -- pg_auto_failover: a monitor and two nodes on loopback ------------------------------

HA_PREFIX = "runstore-pgha-"
HA_NODES = ("n1", "n2")
# The monitor's health checks, tightened from their defaults (5 s period, 20 s before a node
# is unhealthy, 30 s before an unreachable primary counts as demoted) so a failover takes
# seconds: the test cluster lives on one machine.
HA_MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.node_considered_unhealthy_timeout": "2000",
    "pgautofailover.primary_demote_timeout": "5000",
    "pgautofailover.startup_grace_period": "5000",
}


def find_pg_autoctl() -> Path:
    found = shutil.which("pg_autoctl") or shutil.which("pg_autoctl", path="/usr/bin")
    if found is None:
        raise RuntimeError(
            "pg_auto_failover is not installed (no pg_autoctl): install the Debian package "
            "'postgresql-15-auto-failover' (scripts/test does), or set RUNSTORE_PG_HA_DSN"
        )
    return Path(found)


class HACluster:
    """pg_auto_failover (``pg_autoctl``, Debian's package) in ``root``: a monitor and two
    nodes, each run by its own ``pg_autoctl run`` (the keeper, which starts its PostgreSQL
    and restarts it if it dies) in a process group of its own, as the ``postgres`` user when
    root. Synchronous replication (pg_auto_failover's default with a standby): a commit
    returns once the standby has it. Files: ``root/<node>`` (data), ``root/<node>.log``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bindir = find_bindir()
        self.program = find_pg_autoctl()
        self.ports: dict[str, int] = {}
        self.keepers: dict[str, subprocess.Popen[bytes]] = {}

    def host(self, node: str) -> str:
        """The address ``node`` (or "monitor") listens on."""
        return "127.0.0.1"

    @property
    def monitor_uri(self) -> str:
        monitor = f"{self.host('monitor')}:{self.ports['monitor']}"
        return f"postgres://autoctl_node@{monitor}/pg_auto_failover"

    @property
    def dsn(self) -> str:
        """Every node; asyncpg picks the one that is read-write."""
        hosts = ",".join(f"{self.host(node)}:{self.ports[node]}" for node in HA_NODES)
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"

    def node_dsn(self, node: str) -> str:
        return f"postgresql://postgres@{self.host(node)}:{self.ports[node]}/postgres"

    def _inside(self, node: str) -> list[str]:
        """The command prefix that runs a program where ``node`` lives (here: nothing)."""
        return []

    def _command(self, *args: str, node: str = "monitor") -> list[str]:
        env = [
            "env",
            f"PATH={self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            f"XDG_CONFIG_HOME={self.root / 'config'}",
            f"XDG_DATA_HOME={self.root / 'state'}",
            f"TMPDIR={self.root}",
        ]
        command = [*env, str(self.program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return [*self._inside(node), *command]

    def _autoctl(self, *args: str, node: str = "monitor") -> str:
        done = subprocess.run(
            self._command(*args, node=node), capture_output=True, text=True, check=False,
            timeout=300,
            cwd=self.root,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pg_autoctl {' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def _run_keeper(self, node: str) -> None:
        with open(self.root / f"{node}.log", "ab") as log:
            self.keepers[node] = subprocess.Popen(
                self._command("run", "--pgdata", str(self.root / node), node=node),
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True,
            )  # fmt: skip
        (self.root / f"{node}.pgid").write_text(str(self.keepers[node].pid))

    @classmethod
    def create(cls) -> HACluster:
        """The monitor, then n1 (the primary), then n2 (its standby); returns once n2 is a
        secondary and n1 the primary."""
        root = Path(tempfile.mkdtemp(prefix=HA_PREFIX))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        (root / "owner").write_text(str(os.getpid()))
        cluster = cls(root)
        try:
            cluster._create()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _create(self) -> None:
        self.ports = {name: free_port() for name in ("monitor", *HA_NODES)}
        (self.root / "ports").write_text(" ".join(f"{k}={v}" for k, v in self.ports.items()))
        monitor = self.root / "monitor"
        self._autoctl(
            "create", "monitor", "--pgdata", str(monitor), "--pgport", str(self.ports["monitor"]),
            "--hostname", self.host("monitor"), "--auth", "trust", "--no-ssl",
        )  # fmt: skip
        with open(monitor / "postgresql.conf", "a") as conf:  # after pg_autoctl's include
            conf.write(f"listen_addresses = '{self.host('monitor')}'\nfsync = off\n")
            for name, value in HA_MONITOR_SETTINGS.items():
                conf.write(f"{name} = {value}\n")
        self._run_keeper("monitor")
        _wait_for_port(self.ports["monitor"], 60, self.host("monitor"))
        for node in HA_NODES:
            self._autoctl(
                "create", "postgres", "--pgdata", str(self.root / node),
                "--pgport", str(self.ports[node]), "--listen", self.host(node),
                "--hostname", self.host(node), "--name", node, "--auth", "trust", "--no-ssl",
                "--monitor", self.monitor_uri + "?sslmode=disable",
                node=node,
            )  # fmt: skip
            self._allow_clients(node)
            self._run_keeper(node)
            self.wait_for(self.healthy if node == HA_NODES[-1] else self._single, 180)

    def _allow_clients(self, node: str) -> None:
        """Lets the tests' clients in (on loopback, initdb's pg_hba.conf does)."""

    @staticmethod
    def _single(states: dict[str, tuple[str, str]]) -> bool:
        return states.get(HA_NODES[0]) == ("single", "single")

    @staticmethod
    def healthy(states: dict[str, tuple[str, str]]) -> bool:
        """One primary and one secondary, each in the state the monitor assigned."""
        settled = sorted(r for r, a in states.values() if r == a)
        return len(states) == 2 and settled == ["primary", "secondary"]

    def states(self) -> dict[str, tuple[str, str]]:
        """node name -> (reported state, assigned state), from the monitor."""
        import json

        try:
            text = self._autoctl("show", "state", "--json", "--monitor", self.monitor_uri)
            nodes = json.loads(text)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            return {}
        try:
            return {
                n["nodename"]: (n["current_group_state"], n["assigned_group_state"]) for n in nodes
            }
        except (KeyError, TypeError) as exc:
            raise RuntimeError(f"pg_autoctl show state --json: {text[:1000]}") from exc

    def wait_for(self, done: Any, seconds: float) -> dict[str, tuple[str, str]]:
        """Polls ``states()`` until ``done(states)``; raises after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            states = self.states()
            if done(states):
                return states
            if time.monotonic() > deadline:
                raise RuntimeError(f"pg_auto_failover did not get there: {states}")
            time.sleep(0.3)

    def primary(self) -> str:
        states = self.wait_for(
            lambda s: any(r == a == "primary" or r == "wait_primary" for r, a in s.values()), 120
        )
        return next(n for n, (r, a) in states.items() if r in ("primary", "wait_primary"))

    def postmaster_pid(self, node: str) -> int:
        return int((self.root / node / "postmaster.pid").read_text().split()[0])

    def kill_postmaster(self, node: str) -> None:
        """SIGKILL of the node's postmaster alone: its keeper starts it again (crash recovery)."""
        os.kill(self.postmaster_pid(node), signal.SIGKILL)

    def kill_node(self, node: str) -> None:
        """SIGKILL of the node's keeper, postmaster and backends (its process group): the node
        is gone until ``start_node``; the monitor fails over to the other."""
        keeper = self.keepers.pop(node)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(keeper.pid, signal.SIGKILL)
        keeper.wait(30)
        with contextlib.suppress(OSError, ValueError):  # a postmaster that left the group
            os.kill(self.postmaster_pid(node), signal.SIGKILL)

    def start_node(self, node: str) -> None:
        """Runs the node's keeper again; it rejoins as a standby (pg_rewind if needed)."""
        self._run_keeper(node)

    def destroy(self) -> None:
        for node in list(self.keepers):
            keeper = self.keepers.pop(node)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(keeper.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                keeper.wait(30)
        for node in ("monitor", *HA_NODES):
            with contextlib.suppress(OSError, ValueError):  # a keeper of an earlier process
                os.killpg(int((self.root / f"{node}.pgid").read_text()), signal.SIGKILL)
            with contextlib.suppress(OSError, ValueError):
                os.kill(self.postmaster_pid(node), signal.SIGKILL)
        NetnsHACluster.remove_network(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def reap_orphans() -> None:
        """Destroy HA clusters left by test processes that died without cleaning up."""
        for root in Path(tempfile.gettempdir()).glob(HA_PREFIX + "*"):
            with contextlib.suppress(OSError, ValueError):
                if not _pid_alive(int((root / "owner").read_text())):
                    HACluster(root).destroy()


class NetnsHACluster(HACluster):
    """The same cluster with each node in a network namespace of its own, so a test can cut a
    node off the network while it runs: ``ip netns add``, a veth pair per node whose outer end
    is a port of a bridge in the root namespace, all on one private /24 (the bridge, where the
    monitor listens and the clients connect from, is .1; n1 is .2, n2 .3). ``cut(node)``
    disables the node's bridge port: its link stays up, and every packet to or from it is
    dropped without an answer (a partition, not a refusal); ``heal(node)`` forwards again.
    Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2 (``ip``, ``bridge``); without
    them ``create`` raises, saying so. The interfaces and namespaces are listed in
    ``root/network`` and removed by ``destroy`` (also by ``reap_orphans``)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        tag = os.getpid() % 100000
        self.bridge = f"rsb{tag}"
        self.namespaces = {node: f"rsha{tag}{node}" for node in HA_NODES}
        self.outer = {node: f"rs{tag}{node}" for node in HA_NODES}  # its bridge port
        self.subnet = ""  # "10.213.K", chosen by _create

    def host(self, node: str) -> str:
        number = 1 if node == "monitor" else 2 + HA_NODES.index(node)
        return f"{self.subnet}.{number}"

    def _inside(self, node: str) -> list[str]:
        return [] if node == "monitor" else ["ip", "netns", "exec", self.namespaces[node]]

    def _create(self) -> None:
        self._network()
        super()._create()

    def _allow_clients(self, node: str) -> None:
        """The clients connect from the bridge's address, which pg_autoctl does not let in."""
        with open(self.root / node / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.host('monitor')}/32 trust\n")
        with contextlib.suppress(OSError, ValueError):  # running: read it again
            os.kill(self.postmaster_pid(node), signal.SIGHUP)

    @staticmethod
    def _ip(*args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(
                f"network namespaces for the pg_auto_failover cut test: `{' '.join(args)}` "
                f"failed ({done.returncode}): {done.stderr.strip()} (this needs root with "
                "CAP_NET_ADMIN and CAP_SYS_ADMIN, and iproute2; a container without them "
                "cannot run the test)"
            )

    def _network(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError(
                "network namespaces for the pg_auto_failover cut test need root "
                f"(euid {os.geteuid()}): run the postgres-ha stage as root"
            )
        if shutil.which("ip") is None or shutil.which("bridge") is None:
            raise RuntimeError("the pg_auto_failover cut test needs iproute2 (ip, bridge)")
        used = subprocess.run(
            ["ip", "-o", "addr"], capture_output=True, text=True, check=True
        ).stdout
        self.subnet = next(
            f"10.213.{k}"
            for k in [*range(os.getpid() % 200 + 20, 250), *range(20, 250)]
            if f" 10.213.{k}." not in used
        )
        record = self.root / "network"
        names = [f"link {self.bridge}"]
        names += [f"netns {ns}" for ns in self.namespaces.values()]
        names += [f"link {outer}" for outer in self.outer.values()]
        record.write_text("\n".join(names) + "\n")  # before creating: destroy undoes any
        self._ip("ip", "link", "add", self.bridge, "type", "bridge")
        self._ip("ip", "addr", "add", f"{self.host('monitor')}/24", "dev", self.bridge)
        self._ip("ip", "link", "set", self.bridge, "up")
        for node in HA_NODES:
            ns, outer = self.namespaces[node], self.outer[node]
            self._ip("ip", "netns", "add", ns)
            self._ip(
                "ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns
            )
            self._ip("ip", "link", "set", outer, "master", self.bridge)
            self._ip("ip", "link", "set", outer, "up")
            self._ip("ip", "-n", ns, "addr", "add", f"{self.host(node)}/24", "dev", "eth0")
            self._ip("ip", "-n", ns, "link", "set", "eth0", "up")
            self._ip("ip", "-n", ns, "link", "set", "lo", "up")

    def cut(self, node: str) -> None:
        """Every packet to or from ``node`` is dropped, silently, until ``heal(node)``."""
        self._ip("bridge", "link", "set", "dev", self.outer[node], "state", "0")  # disabled

    def heal(self, node: str) -> None:
        self._ip("bridge", "link", "set", "dev", self.outer[node], "state", "3")  # forwarding

    @staticmethod
    def remove_network(root: Path) -> None:
        """Kills what still runs in the namespaces listed in ``root/network`` and removes them
        and the interfaces listed there (each only if it exists)."""
        try:
            lines = (root / "network").read_text().split("\n")
        except OSError:
            return
        for line in lines:
            kind, _, name = line.partition(" ")
            if kind == "netns":
                pids = subprocess.run(
                    ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
                ).stdout.split()
                for pid in pids:
                    with contextlib.suppress(OSError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        for line in lines:
            kind, _, name = line.partition(" ")
            if kind == "link":
                subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
        (root / "network").unlink(missing_ok=True)


_shared_ha: HACluster | None = None
# Why this process's cluster is not a NetnsHACluster (for the test that needs one to say).
no_netns_reason = ""


def shared_ha_cluster() -> HACluster:
    """This process's pg_auto_failover cluster (started on first use, destroyed at exit): a
    NetnsHACluster where network namespaces can be made (as root), so the same cluster serves
    the tests that cut a node off; otherwise, or if making them fails, on loopback, with the
    reason in ``no_netns_reason``."""
    global _shared_ha, no_netns_reason
    if _shared_ha is None:
        HACluster.reap_orphans()
        try:
            _shared_ha = NetnsHACluster.create()
        except RuntimeError as exc:
            if "network namespaces" not in str(exc) and "iproute2" not in str(exc):
                raise
            no_netns_reason = str(exc)
            _shared_ha = HACluster.create()
        atexit.register(_shared_ha.destroy)
    return _shared_ha


def shared_ha_dsn() -> str:
    """``$RUNSTORE_PG_HA_DSN``, or the multi-host DSN of this process's HA cluster."""
    return os.environ.get("RUNSTORE_PG_HA_DSN") or shared_ha_cluster().dsn


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    command, state = argv[0], Path(argv[1])
    state.mkdir(parents=True, exist_ok=True)
    pointer = state / "cluster"
    if command == "start":
        if pointer.exists() and Path(pointer.read_text()).exists():
            print(
                f"a cluster is running already ({pointer.read_text()}); stop it first",
                file=sys.stderr,
            )
            return 1
        cluster = Cluster.create()
        pointer.write_text(str(cluster.root))
        (state / "dsn").write_text(cluster.dsn + "\n")
        with contextlib.suppress(RuntimeError):  # without PgBouncer, only the direct DSN
            (state / "pgbouncer_dsn").write_text(cluster.start_pgbouncer() + "\n")
        print(cluster.dsn)
        return 0
    if pointer.exists():
        Cluster(Path(pointer.read_text()), find_bindir()).destroy()
        pointer.unlink()
    (state / "dsn").unlink(missing_ok=True)
    (state / "pgbouncer_dsn").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
