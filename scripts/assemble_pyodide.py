#!/usr/bin/env python3
"""Assemble an offline Pyodide distribution folder.

Usage (run with the dev venv's Python, which has ``pip`` and ``packaging``)::

    .venv/bin/python scripts/assemble_pyodide.py [--out DIR] [--packages a,b,...] [--wheel W ...]

- ``--out DIR``: the folder to fill (default ``build/pyodide``). It gets the Pyodide core from
  ``node_modules/pyodide`` (``npm ci`` is run when that is missing), the wheels of the chosen
  packages and a rewritten ``pyodide-lock.json``. Serve DIR over http, or use it as Node's
  ``indexURL``; ``loadPackage``/``micropip.install`` of a shipped package then works offline.
- ``--packages a,b,...``: packages to ship (default: what ``tests/pyodide`` needs). An entry is a
  name from Pyodide's lock (shipped at the lock's version) or ``name==version`` for a pure package
  that the lock lacks (or to override its version). Each package brings its lock ``depends`` plus
  the requirements in its wheel metadata (evaluated for Pyodide, no extras), recursively.
  The sets ``tests`` (the default) and ``jupyterlite`` (what the JupyterLite kernel loads at
  start, for scripts/build_jupyterlite) may be named instead.
- ``--wheel W.whl``: a local pure wheel (e.g. ``build/wheel/runstore-*.whl``) copied into DIR and
  added to the lock under its project name; its requirements are resolved like the others.
- ``--write-lock FILE`` (scripts/lock): resolve every set above (and JupyterLite's piplite wheels)
  from PyPI and write FILE, ``locks/pyodide.txt``: each wheel's exact version and sha256.

Wheels come from PyPI as ``py3-none-any`` files at the version in ``locks/pyodide.txt``, with the
hash that lock names (``pip download --require-hashes``); a package missing from that lock, or at
another version, is an error that says to run scripts/lock. They are cached in ``build/cache/``
(a cached wheel is used only when its sha256 is the lock's), so a re-run is offline and fast.
PyPI files differ from Pyodide's, so each shipped entry gets the real ``file_name`` and
``sha256``. Every lock entry that is not shipped is removed: a lock naming a missing wheel makes
loads fail later. Re-running with the same arguments gives the same folder;
wheels left from an earlier run that are no longer shipped are deleted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
NPM_PYODIDE = ROOT / "node_modules" / "pyodide"
CACHE = ROOT / "build" / "cache" / "pyodide-wheels"
PYODIDE_VERSION = "314.0.7"

# What tests/pyodide needs: the test tools at the very versions of requirements-test.txt, so the
# suite runs on the same pytest, pytest-asyncio and Hypothesis natively and inside Pyodide (the
# lock's pytest-asyncio 0.25.3 lacks the loop-factory hook the tests use; Hypothesis is not in
# the lock, and its releases after 6.155.7 ship only compiled wheels: requirements-test.txt pins
# 6.155.7, the newest pure one).
SAME_AS_NATIVE = ("pytest", "pytest-asyncio", "hypothesis")


def native_pin(name: str) -> str:
    """``name==version`` as pinned in requirements-test.txt."""
    for line in (ROOT / "requirements-test.txt").read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if requirement.partition("==")[0].strip() == name:
            return requirement
    sys.exit(f"requirements-test.txt pins no {name}")


DEFAULT_PACKAGES = ["micropip", "packaging", *(native_pin(name) for name in SAME_AS_NATIVE)]
# What the JupyterLite kernel loads at start (scripts/build_jupyterlite); ipython 9 requires
# ipython-pygments-lexers, which Pyodide's lock lacks.
JUPYTERLITE_PACKAGES = [
    *("micropip", "ipython", "asttokens", "decorator", "executing", "matplotlib_inline"),
    *("prompt_toolkit", "pure_eval", "pygments", "six", "stack_data", "traitlets", "wcwidth"),
    *("jedi", "parso", "ipython-pygments-lexers==1.1.1"),
]
# Served from the JupyterLite site's piplite index (the kernel imports it; nothing else ships it).
JUPYTERLITE_PIPLITE = ["comm==0.2.3"]
SETS = {"tests": DEFAULT_PACKAGES, "jupyterlite": JUPYTERLITE_PACKAGES}
LOCK = ROOT / "locks" / "pyodide.txt"


@dataclass
class Shipped:
    """One package that goes into DIR: its wheel and its lock entry."""

    key: str
    wheel: Path
    entry: dict[str, Any]
    requires: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[assemble_pyodide] {message}", file=sys.stderr, flush=True)


def ensure_npm_pyodide() -> None:
    meta = NPM_PYODIDE / "package.json"
    if not meta.exists() or json.loads(meta.read_text())["version"] != PYODIDE_VERSION:
        log("node_modules/pyodide missing or stale: running npm ci")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    version = json.loads(meta.read_text())["version"]
    if version != PYODIDE_VERSION:
        sys.exit(f"node_modules/pyodide is {version}, expected {PYODIDE_VERSION} (package.json)")


def pyodide_environment(lock_info: dict[str, str]) -> dict[str, str]:
    """Marker environment of Pyodide, for evaluating Requires-Dist."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    python = lock_info["python"]
    env.update(
        sys_platform="emscripten",
        platform_system="Emscripten",
        os_name="posix",
        platform_machine="wasm32",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        python_version=".".join(python.split(".")[:2]),
        python_full_version=python,
        implementation_version=python,
    )
    return env


def wheel_metadata(wheel: Path) -> tuple[str, str, list[str], list[str]]:
    """(name, version, Requires-Dist lines, top-level import names) of a wheel."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(
            n for n in names if n.endswith(".dist-info/METADATA") and n.count("/") == 1
        )
        meta = Parser().parsestr(zf.read(meta_name).decode("utf-8"))
    tops: set[str] = set()
    for name in names:
        first, _, rest = name.partition("/")
        if first.endswith((".dist-info", ".data")):
            continue
        if rest and rest == "__init__.py":
            tops.add(first)
        elif not rest and first.endswith(".py"):
            tops.add(first[:-3])
    public = sorted(t for t in tops if not t.startswith("_")) or sorted(tops)
    return meta["Name"], meta["Version"], meta.get_all("Requires-Dist") or [], public


def runtime_requires(requires: list[str], env: dict[str, str]) -> list[str]:
    """Canonical names of the requirements that apply in Pyodide without extras."""
    out: list[str] = []
    for line in requires:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
            out.append(canonicalize_name(req.name))
    return out


def is_pure(wheel: Path) -> bool:
    return all(
        tag.abi == "none" and tag.platform == "any" for tag in parse_wheel_filename(wheel.name)[3]
    )


def cached_wheel(key: str, version: str, hashes: set[str] | None) -> Path | None:
    for wheel in CACHE.glob("*.whl"):
        name, ver, _, _ = parse_wheel_filename(wheel.name)
        if name == key and str(ver) == str(version) and is_pure(wheel):
            if hashes is None or sha256(wheel) in hashes:
                return wheel
            wheel.unlink()  # not the locked file
    return None


def read_lock(path: Path) -> dict[str, tuple[str, set[str]]]:
    """``{name: (version, {sha256, ...})}`` of locks/pyodide.txt."""
    if not path.exists():
        sys.exit(f"{path.relative_to(ROOT)} is missing: run scripts/lock")
    pins: dict[str, tuple[str, set[str]]] = {}
    for line in path.read_text().splitlines():
        spec, _, rest = line.partition(" ")
        if spec and not spec.startswith("#"):
            name, _, version = spec.partition("==")
            hashes = {h.removeprefix("--hash=sha256:") for h in rest.split()}
            pins[canonicalize_name(name)] = (version, hashes)
    return pins


def fetch_wheel(key: str, version: str, locked: dict[str, tuple[str, set[str]]] | None) -> Path:
    """The pure wheel of key==version, from the cache or PyPI. With ``locked`` (the normal case)
    it must be the lock's version and file (hash checked); without (``--write-lock``) any pure
    wheel of that version on PyPI."""
    hashes = None
    spec = f"{key}=={version}"
    if locked is not None:
        pinned, hashes = locked.get(key, ("", set()))
        if pinned != version:
            sys.exit(
                f"locks/pyodide.txt pins {f'{key}=={pinned}' if pinned else f'no {key}'}, "
                f"{spec} is wanted: run scripts/lock"
            )
        spec += "".join(f" --hash=sha256:{h}" for h in sorted(hashes))
    found = cached_wheel(key, version, hashes) if locked is not None else None
    if found:
        return found
    CACHE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {key}=={version}")
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(spec + "\n")
        got = subprocess.run(
            [
                *pip,
                "download",
                "--no-deps",
                *(["--require-hashes"] if hashes is not None else []),
                "--only-binary=:all:",
                "--python-version",
                "3.14",
                "--platform",
                "any",
                "--dest",
                str(Path(tmp) / "wheels"),
                "-r",
                str(requirements),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if got.returncode != 0:
            sys.exit(f"could not download a pure wheel of {key}=={version}:\n{got.stderr}")
        for wheel in (Path(tmp) / "wheels").glob("*.whl"):
            if is_pure(wheel):
                shutil.move(str(wheel), CACHE / wheel.name)
    found = cached_wheel(key, version, hashes)
    if not found:
        sys.exit(f"could not get a pure py3-none-any wheel of {key}=={version}")
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_entry(
    base: dict[str, Any] | None, wheel: Path, imports: list[str], name: str, version: str
) -> dict[str, Any]:
    entry = dict(base or {})
    entry.update(
        name=entry.get("name", name),
        version=version,
        file_name=wheel.name,
        sha256=sha256(wheel),
        install_dir="site",
        package_type="package",
        imports=entry.get("imports") or imports,
        unvendored_tests=False,
        tool=entry.get("tool", {}),
    )
    entry.setdefault("depends", [])
    return entry


def resolve(
    lock: dict[str, dict[str, Any]],
    wanted: list[str],
    local: list[Path],
    env: dict[str, str],
    locked: dict[str, tuple[str, set[str]]] | None,
) -> dict[str, Shipped]:
    pins: dict[str, str] = {}
    todo: list[str] = []
    for item in wanted:
        name, _, version = item.partition("==")
        key: str = canonicalize_name(name.strip())
        if version:
            pins[key] = version.strip()
        todo.append(key)
    shipped: dict[str, Shipped] = {}
    for path in local:
        name, version, requires, imports = wheel_metadata(path)
        key = canonicalize_name(name)
        if not is_pure(path):
            sys.exit(f"--wheel {path}: not a pure py3-none-any wheel")
        deps = runtime_requires(requires, env)
        entry = make_entry(None, path, imports, name, version)
        entry["depends"] = sorted(set(deps))
        shipped[key] = Shipped(key, path, entry, deps)
        todo.extend(deps)
    while todo:
        key = canonicalize_name(todo.pop())  # lock depends are not all canonical
        if key in shipped:
            continue
        base = lock.get(key)
        version = pins.get(key) or (str(base["version"]) if base else "")
        if not version:
            sys.exit(
                f"{key} is not in Pyodide's lock: pass it as {key}==VERSION in --packages "
                f"(needed by {sorted(k for k, s in shipped.items() if key in s.requires)})"
            )
        if base and version != base["version"]:
            base = {k: v for k, v in base.items() if k not in ("imports", "depends")}
        wheel = fetch_wheel(key, version, locked)
        name, _, requires, imports = wheel_metadata(wheel)
        deps = sorted(
            set(runtime_requires(requires, env))
            | {canonicalize_name(d) for d in (base.get("depends", []) if base else [])}
        )
        entry = make_entry(base, wheel, imports, name, version)
        entry["depends"] = deps
        shipped[key] = Shipped(key, wheel, entry, deps)
        todo.extend(deps)
    return shipped


def assemble(out: Path, wanted: list[str], local: list[Path]) -> None:
    ensure_npm_pyodide()
    out.mkdir(parents=True, exist_ok=True)
    lock = json.loads((NPM_PYODIDE / "pyodide-lock.json").read_text())
    env = pyodide_environment(lock["info"])
    shipped = resolve(lock["packages"], wanted, local, env, read_lock(LOCK))

    for item in NPM_PYODIDE.iterdir():
        if item.is_file() and item.name not in ("package.json", "pyodide-lock.json"):
            shutil.copy2(item, out / item.name)
    keep = {s.wheel.name for s in shipped.values()}
    for old in out.glob("*.whl"):
        if old.name not in keep:
            old.unlink()
    for s in shipped.values():
        target = out / s.wheel.name
        if not target.exists() or sha256(target) != s.entry["sha256"]:
            shutil.copy2(s.wheel, target)
    lock["packages"] = {key: shipped[key].entry for key in sorted(shipped)}
    (out / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    log(f"{out}: Pyodide {PYODIDE_VERSION} + {len(shipped)} packages: {', '.join(sorted(shipped))}")


def write_lock(path: Path) -> None:
    """Resolve every set (and the piplite wheels) from PyPI; write name==version --hash lines."""
    ensure_npm_pyodide()
    lock = json.loads((NPM_PYODIDE / "pyodide-lock.json").read_text())
    env = pyodide_environment(lock["info"])
    pins: dict[str, Shipped] = {}
    for wanted in [*SETS.values(), JUPYTERLITE_PIPLITE]:
        for key, s in resolve(lock["packages"], wanted, [], env, None).items():
            if key in pins and pins[key].wheel != s.wheel:
                sys.exit(f"{key}: {pins[key].wheel.name} and {s.wheel.name} both wanted")
            pins[key] = s
    lines = [
        "# The pure wheels scripts/assemble_pyodide.py ships into Pyodide (tests, JupyterLite),",
        "# with their sha256. Generated by scripts/lock: do not edit.",
        *(
            f"{key}=={s.entry['version']} --hash=sha256:{s.entry['sha256']}"
            for key, s in sorted(pins.items())
        ),
    ]
    path.write_text("\n".join(lines) + "\n")
    log(f"{path}: {len(pins)} wheels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "pyodide")
    parser.add_argument(
        "--packages",
        default="tests",
        help="comma-separated lock names or name==version, or a set: tests, jupyterlite "
        "(default: tests)",
    )
    parser.add_argument("--write-lock", type=Path, help="resolve every set, write this lock")
    parser.add_argument(
        "--wheel",
        type=Path,
        nargs="*",
        default=[],
        action="extend",
        help="local pure wheel(s) to ship and add to the lock",
    )
    args = parser.parse_args()
    if args.write_lock:
        write_lock(args.write_lock.resolve())
        return
    wanted = SETS.get(args.packages) or [p for p in args.packages.split(",") if p.strip()]
    assemble(args.out.resolve(), wanted, [w.resolve() for w in args.wheel])


if __name__ == "__main__":
    main()
