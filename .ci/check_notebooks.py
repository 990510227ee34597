"""Fail when `nbdev_export`/`nbdev_clean` would change the tree, or a notebook carries outputs it should not.

`denser/*.py` is generated from `nbs/`; notebooks are committed clean (no execution counts, only papermill's and
`keep-output`'s `tags` metadata), so the package and its literate source never drift apart. Only cells tagged
`keep-output` (figures, small tables) keep outputs, made by their current source (`.ci/figures.py`, `make figures`).
"""
import hashlib, json, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
bin_dir = Path(sys.executable).parent


def snapshot():
    files = [*root.glob("nbs/**/*.ipynb"), *root.glob("denser/**/*.py")]
    return {f.relative_to(root): hashlib.md5(f.read_bytes()).hexdigest() for f in files if "checkpoint" not in str(f)}


before = snapshot()
for tool in ("nbdev_export", "nbdev_clean"):
    subprocess.run([str(bin_dir / tool)], cwd=root, check=True)
after = snapshot()
changed = sorted(str(f) for f in before.keys() | after.keys() if before.get(f) != after.get(f))
sys.path.insert(0, str(root / ".ci"))
from figures import notebooks, problems  # noqa: E402

with_outputs = [f"{f.relative_to(root)}: {'; '.join(found)}" for f in notebooks() if (found := problems(f))]
if changed:
    print("nbdev_export/nbdev_clean changed these files; run `make export` and commit:", *changed, sep="\n  ")
if with_outputs:
    print("outputs only in `keep-output` cells, made by their current source:", *with_outputs, sep="\n  ")
if changed or with_outputs:
    sys.exit(1)
print(f"notebooks and package in sync, {len(after)} files checked")
