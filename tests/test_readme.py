"""The README's code blocks run as written, in a scratch folder (offline, tiny model).

Python blocks run whole; shell blocks run line by line. Skipped, and said so in the README: a block whose first
line is a comment saying it needs the hub or is for GPU machines / not run by the tests, a line marked
"not run by the tests", and the `make` commands (`make test` is CI itself; `make run` is the main job). The pages in
docs/: their generated tables are copied unchanged, their links resolve, and the results pages (performance, cpu-quick,
cpu-fast, study, credit-quality, full-strength) are what their report notebooks write from the committed raw results.
"""
import os
import re
import shutil
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


ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "results").glob("*/*.md"))]


def load_pages_tool():
    "The `.ci/pages.py` module (it refreshes and checks the generated blocks of the docs pages)."
    import importlib.util
    spec = importlib.util.spec_from_file_location("pages", ROOT / ".ci" / "pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_pages_show_their_generated_tables_unchanged():
    "Every table a page copies between `generated from` markers is the generated file's text, not a retyped one."
    result = subprocess.run([sys.executable, str(ROOT / ".ci" / "pages.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sum(page.read_text().count("<!-- generated from ") for page in PAGES) >= 10


def test_a_retyped_or_edited_generated_block_is_stale(tmp_path):
    pages = load_pages_tool()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.md").write_text("# title\n\n## Table\n\n| a |\n|---|\n| 0.5 |\n\n![f](f.png)\n\n## Next\n\nx\n")
    page = tmp_path / "page.md"
    page.write_text("<!-- generated from results/r.md#Table; `make pages` refreshes it -->\n| a |\n|---|\n| 0.6 |\n"
                    "<!-- end generated -->\n")
    pages.root = tmp_path
    text, stale = pages.refresh(page)
    assert stale == ["page.md: results/r.md#Table"]
    assert "| 0.5 |" in text and "| 0.6 |" not in text and "](results/f.png)" in text and "## Next" not in text
    page.write_text(text)
    assert pages.refresh(page)[1] == []


def test_every_relative_link_of_readme_and_docs_resolves():
    "Links and images of README.md and docs/ point at files that exist (no link to a retired or moved file)."
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)\s#]+)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_performance_page_is_what_its_report_notebook_writes(tmp_path):
    "docs/results/performance/performance.md is the report notebook's output on the committed raw results."
    from denser.execute import run_notebook
    committed = ROOT / "docs" / "results" / "performance"
    copy = tmp_path / "performance"
    shutil.copytree(committed, copy)
    run_notebook(ROOT / "nbs" / "experiments" / "performance_report.ipynb", copy, {"out_dir": str(copy)}, timeout=600)
    assert (copy / "performance.md").read_text() == (committed / "performance.md").read_text()


STUDY_TITLE = "The study: SmolLM2-135M-Instruct, 2-digit arithmetic, 20 steps, 6 paired seeds"  # docs/study.md's command


@pytest.mark.parametrize("results, notebook, parameters, outputs", [
    ("cpu-quick", "report", {"title": "cpu-quick: SmolLM2-135M-Instruct, basic_arithmetic, 10 steps"},
     ["results.md", "results.csv", "summary.csv", "held_out_by_step.csv"]),
    ("cpu-fast", "report", {"title": "cpu-fast: fp32, bf16 and the short prompt, GRPO, 3 seeds", "baseline_arm": "fp32"},
     ["results.md", "results.csv", "summary.csv", "held_out_by_step.csv", "paired.csv"]),
    ("study", "study_report", {"title": STUDY_TITLE}, ["study.md", "study_paired.csv", "study_summary.csv", "study_per_step.csv"]),
])
def test_results_pages_are_what_their_report_notebooks_write(results, notebook, parameters, outputs, tmp_path):
    "The committed tables of a results page are its report notebook's output on the committed raw runs (no training)."
    from denser.execute import run_notebook
    committed = ROOT / "docs" / "results" / results
    copy = tmp_path / results
    shutil.copytree(committed / "raw", copy)
    run_notebook(ROOT / "nbs" / "experiments" / f"{notebook}.ipynb", copy, {"out_dir": str(copy), **parameters}, timeout=600)
    differing = [name for name in outputs if (copy / name).read_text() != (committed / name).read_text()]
    assert not differing, f"{results}: {differing} differ from what {notebook}.ipynb writes"


def without_generated_line(text: str) -> str:
    "A page without its `Generated <time> ... machine ...` line (when and where the report ran, not a result)."
    return "\n".join(line for line in text.splitlines() if not line.startswith("Generated "))


@pytest.mark.parametrize("results, notebook, parameters, reads, writes, page, outputs", [
    ("credit-quality", "credit_quality_report",
     {"title": "credit-quality: SmolLM2-135M-Instruct, chain arithmetic (3 x 1-4, +)",
      "rerun": "bash docs/results/credit-quality/run.sh"},
     "results", "out_dir", "credit-quality.md", ["credit_quality.csv", "credit_quality_completions.csv"]),
    ("full-strength", "full_strength_report",
     {"title": "DenseR at full strength, stage 1: SmolLM2-135M-Instruct, chain arithmetic",
      "rerun": "scripts/pinned_reproduce.sh 0cf426a full-strength (the page: docs/results/full-strength/README.md)"},
     "out_dir", "results_dir", "full-strength.md", ["full_strength.csv"]),
])
def test_dated_results_pages_are_what_their_report_notebooks_write(results, notebook, parameters, reads, writes, page,
                                                                   outputs, tmp_path):
    """The experiments whose page says when and on what it was generated: the tables and every other line of the page
    are the report notebook's output on the committed raw results (the commands in the experiment's README)."""
    from denser.execute import run_notebook
    committed = ROOT / "docs" / "results" / results
    raw = committed / "raw" if (committed / "raw").is_dir() else committed
    copy, out = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(raw, copy, ignore=shutil.ignore_patterns("*.ipynb", "*.png", "*.md", "*.csv"))
    out.mkdir()
    # `reads` and `writes`: the report's parameters naming the raw results and the folder it writes into
    run_notebook(ROOT / "nbs" / "experiments" / f"{notebook}.ipynb", tmp_path,
                 {reads: str(copy), writes: str(out), **parameters}, timeout=600)
    differing = [name for name in outputs if (out / name).read_text() != (committed / name).read_text()]
    assert not differing, f"{results}: {differing} differ from what {notebook}.ipynb writes"
    assert without_generated_line((out / page).read_text()) == without_generated_line((committed / page).read_text())
