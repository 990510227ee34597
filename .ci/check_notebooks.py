"""Fail when `nbdev_export`/`nbdev_clean` would change the tree, or a notebook carries outputs.

`denser/*.py` is generated from `nbs/`; notebooks are committed clean (no outputs, no execution
counts, only papermill's `tags` metadata), so the package and its literate source never drift apart.
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
with_outputs = [
    str(f.relative_to(root))
    for f in sorted(root.glob("nbs/**/*.ipynb"))
    if "checkpoint" not in str(f)
    and any(c.get("outputs") or c.get("execution_count") for c in json.loads(f.read_text())["cells"])
]
if changed:
    print("nbdev_export/nbdev_clean changed these files; run `make export` and commit:", *changed, sep="\n  ")
if with_outputs:
    print("notebooks must be committed without outputs; clear them:", *with_outputs, sep="\n  ")
if changed or with_outputs:
    sys.exit(1)
print(f"notebooks and package in sync, {len(after)} files checked")
