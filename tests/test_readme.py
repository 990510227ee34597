"""The README's code blocks run as written, in a scratch folder (offline, tiny model).

Python blocks run whole; shell blocks run line by line. Skipped, and said so in the README: a block whose first
line is a comment saying it needs the hub or is for GPU machines / not run by the tests, a line marked
"not run by the tests", and the `make` commands (`make test` is CI itself; `make run` is the main job).
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


def test_every_number_of_the_findings_is_in_the_generated_file_it_links():
    """Numbers are generated, never retyped: each decimal in a finding appears in a results file that finding links.

    Settings written as code (`denser_beta: 0.1`) are the design, not results, and are not checked."""
    root = Path(__file__).resolve().parent.parent
    findings = README.split("## What we found", 1)[1].split("\n## ", 1)[0]
    items = [item for item in findings.split("\n- ")[1:]]
    assert len(items) >= 5
    for item in items:
        linked = [root / path for path in re.findall(r"\]\((docs/results/[^)#]+\.(?:md|csv))\)", item)]
        numbers = re.findall(r"(?<![\d.])\d+\.\d+(?![\d.])", re.sub(r"`[^`]*`", "", item))
        if not numbers:
            continue
        assert linked, f"a finding states numbers but links no generated file: {item[:80]}"
        generated = "".join(path.read_text() for path in linked)
        missing = [number for number in numbers if not re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", generated)]
        assert not missing, f"{missing} of {item[:60]!r} are not in {[str(p.relative_to(root)) for p in linked]}"
