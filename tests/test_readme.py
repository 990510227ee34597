"""The README's code blocks run as written, in a scratch folder (offline, tiny model).

Python blocks run whole; shell blocks run line by line. Skipped, and said so in the README: a block whose first
line is a comment saying it needs the hub or is for GPU machines / not run by the tests, a line marked
"not run by the tests", and the `make` commands (`make test` is CI itself; `make run` is the 18-minute main job).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
SHELL = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
SKIP = ("needs the hub", "not run by the tests")


def skipped_block(code: str) -> bool:
    first = code.splitlines()[0]
    return first.startswith("#") and any(marker in first for marker in SKIP)


SHELL_LINES = [line for block in SHELL if not skipped_block(block) for line in block.splitlines()
               if line.strip() and not line.startswith(("#", "make ")) and "not run by the tests" not in line]


def test_readme_has_code_to_run():
    assert len(PYTHON) >= 2 and len(SHELL_LINES) >= 6


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_readme_python_block_runs(index, tmp_path):
    if skipped_block(PYTHON[index]):
        pytest.skip("needs the hub and a GPU")
    result = subprocess.run([sys.executable, "-c", PYTHON[index]], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_readme_shell_lines_run_in_order(tmp_path):
    "One scratch folder for all lines: later lines use what earlier ones wrote (runs/tiny)."
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in SHELL_LINES:
        result = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                                env=environment)
        assert result.returncode == 0, f"{line}\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
