"""The README's quick start runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[(1, 'user', 'Hi, I am Ada')]"


def test_install_names_the_wheel_scripts_build_wheel_makes() -> None:
    version = re.search(
        r'^version = "([^"]+)"', (README.parent / "pyproject.toml").read_text(), re.M
    )
    assert version is not None
    install = README.read_text(encoding="utf-8").split("## Install", 1)[1].split("\n## ", 1)[0]
    wheels = re.findall(r"runstore-[^\s/'\"]+\.whl", install)
    assert wheels and set(wheels) == {f"runstore-{version.group(1)}-py3-none-any.whl"}
    assert "scripts/build_wheel" in install
