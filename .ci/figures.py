"""Notebook outputs that teach: cells tagged `keep-output` keep their outputs (figures, small tables); no other cell does.

  python .ci/figures.py refresh [NOTEBOOK ...]   re-execute the notebooks that have such cells (as nbdev_test does:
                                                 cwd nbs/..., `#| slow`/`#| gpu`/`#| eval: false` cells skipped) and
                                                 store each kept cell's outputs stamped with a hash of its source
  python .ci/figures.py check                    fail when a notebook carries outputs outside `keep-output` cells, a
                                                 kept cell has none, or its outputs were made by other source
`make figures` runs the first; `.ci/check_notebooks.py` runs the second.
"""
import hashlib, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "keep-output"
SKIP = ("#| slow", "#| gpu", "#| eval: false", "nbdev_export()")


def source_sha(cell) -> str:
    return hashlib.sha256("".join(cell["source"]).encode()).hexdigest()[:16]


def kept(cell) -> bool:
    return cell["cell_type"] == "code" and TAG in cell.get("metadata", {}).get("tags", [])


def notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "nbs").glob("**/*.ipynb") if ".ipynb_checkpoints" not in str(p))


def problems(path: Path) -> list[str]:
    "What is wrong with the outputs of one notebook."
    found = []
    for number, cell in enumerate(json.loads(path.read_text())["cells"]):
        outputs = cell.get("outputs") or []
        if not kept(cell):
            if outputs or cell.get("execution_count"):
                found.append(f"cell {number}: outputs outside a `{TAG}` cell (clear them)")
            continue
        if not outputs:
            found.append(f"cell {number}: a `{TAG}` cell without outputs (run make figures)")
        elif any(o.get("metadata", {}).get("denser", {}).get("source_sha") != source_sha(cell) for o in outputs):
            found.append(f"cell {number}: its outputs were made by other code (run make figures)")
    return found


def refresh(path: Path):
    "Re-execute `path` and keep the outputs of its `keep-output` cells, stamped with their source's hash."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    nb = read_nb(path)
    shell = CaptureShell(path=path.parent)
    for cell in nb.cells:
        if cell.cell_type != "code" or any(flag in cell.source for flag in SKIP):
            continue
        shell.cell(cell)
        if shell.exc:
            raise RuntimeError(f"{path.relative_to(ROOT)}: a cell raised {shell.exc!r}:\n{cell.source[:300]}")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        if not kept(cell):
            cell.outputs = []
            continue
        for output in cell.outputs:
            output.pop("execution_count", None)
            output.setdefault("metadata", {})["denser"] = {"source_sha": source_sha(cell)}
    write_nb(nb, path)


if __name__ == "__main__":
    command, *names = sys.argv[1:] or ["check"]
    if command == "refresh":
        for path in [Path(n).resolve() for n in names] or [p for p in notebooks() if any(kept(c) for c in json.loads(p.read_text())["cells"])]:
            refresh(path)
            print(f"refreshed {path.relative_to(ROOT)}")
    elif command == "check":
        bad = {str(p.relative_to(ROOT)): problems(p) for p in notebooks()}
        bad = {name: found for name, found in bad.items() if found}
        for name, found in bad.items():
            print(name, *found, sep="\n  ")
        sys.exit(1 if bad else 0)
    else:
        sys.exit(__doc__)
