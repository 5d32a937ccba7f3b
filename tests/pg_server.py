"""A private, throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.

Standard library only. PostgreSQL refuses to run as root, so as root every server command
runs as the ``postgres`` user (created by the Debian package) in a temporary folder it owns.

    python tests/pg_server.py start STATE_DIR  # start one; print its DSN, write STATE_DIR/dsn
    python tests/pg_server.py stop STATE_DIR   # stop it and delete its files

In tests, ``shared_dsn()`` gives ``$RUNSTORE_PG_DSN`` if set, otherwise starts one cluster
for this process (stopped at exit). It raises if PostgreSQL is not installed: a run that
wants PostgreSQL fails rather than skips.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.root / "log"
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
                " -c max_connections=300 -c fsync=off -c full_page_writes=off"
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

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


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
        print(cluster.dsn)
        return 0
    if pointer.exists():
        Cluster(Path(pointer.read_text()), find_bindir()).destroy()
        pointer.unlink()
    (state / "dsn").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
