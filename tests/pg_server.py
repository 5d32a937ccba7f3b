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


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
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
