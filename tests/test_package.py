"""The installed package reproduces, not only the checkout.

A wheel built from this checkout must carry the experiment notebooks and files (`nbs/experiments`) and the
example configs (`configs/`), and run `denser reproduce ci-tiny` and `denser train --config tiny` from a folder
outside the checkout. What these tests do, and what they leave out:

- The sources (setup.py, settings.ini, MANIFEST.in, the package, nbs/experiments, configs, ...) are copied to a
  temporary folder and built there with `python -m build --no-isolation` (this environment's setuptools): the
  sdist first, then the wheel from the unpacked sdist, as a user of a published release gets it. The checkout
  is not written to.
- The wheel is installed with `pip install --no-deps` into a new virtual environment. Its dependencies (torch,
  TRL, ...: gigabytes) are not downloaded: a `.pth` file in the new environment names this environment's
  site-packages. A `.pth` line that is a path only appends that folder to `sys.path`: the `.pth` files inside it,
  among them the editable install's finder that maps `denser` to this checkout, are not run, and the new
  environment's own site-packages come first. `test_denser_is_the_wheels` checks that `denser` (and the
  experiment and config folders it uses) come from the new environment.
- Not checked: that pip resolves the dependencies from a package index.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import denser
from denser import cli

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("setup.py", "settings.ini", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "denser",
           "nbs/experiments", "configs")
SHIPPED = {"experiments": ("nbs/experiments", ("*.ipynb", "*.yaml")), "configs": ("configs", ("*.yaml", "README.md"))}
ENVIRONMENT = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")} | dict(
    OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1", MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false")


def run(command, **kwargs) -> subprocess.CompletedProcess:
    "Run `command`; fail with its output unless it exits with 0."
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, env=ENVIRONMENT, **kwargs)
    assert done.returncode == 0, f"{command} exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    "The wheel, built from the sdist of a copy of the checkout's sources."
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], timeout=300)
    return next(dist.glob("*.whl"))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    "The `bin` folder of a new virtual environment holding the wheel, with this environment's packages importable."
    root = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", root])
    python = root / "bin" / "python"
    site_packages = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site_packages / "dependencies-of-the-test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel])
    return root / "bin"


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    "A working directory outside the checkout."
    return tmp_path_factory.mktemp("elsewhere")


def test_wheel_carries_the_experiments_and_configs_of_the_checkout(wheel):
    archive = zipfile.ZipFile(wheel)
    carried = {name.removeprefix("denser/"): archive.read(name) for name in archive.namelist()
               if name.startswith(tuple(f"denser/{folder}/" for folder in SHIPPED))}
    expected = {f"{folder}/{path.name}": path.read_bytes() for folder, (source, patterns) in SHIPPED.items()
                for pattern in patterns for path in (ROOT / source).glob(pattern)}
    assert "experiments/ci-tiny.yaml" in expected and "configs/tiny.yaml" in expected
    assert sorted(carried) == sorted(expected)
    assert [name for name in expected if carried[name] != expected[name]] == []  # byte for byte the checkout's
    assert {name.split("/")[0] for name in archive.namelist()} == {"denser", f"denser-{denser.__version__}.dist-info"}


def test_experiments_extra_holds_what_only_notebooks_need(wheel):
    metadata = zipfile.ZipFile(wheel).read(f"denser-{denser.__version__}.dist-info/METADATA").decode()
    requirements = [Requirement(line.removeprefix("Requires-Dist: ")) for line in metadata.splitlines()
                    if line.startswith("Requires-Dist: ")]

    def names(extra=None):
        "The requirements of the core (extra None) or of an extra."
        return {r.name for r in requirements if (r.marker.evaluate({"extra": extra or ""}) if r.marker else extra is None)}

    settings = ConfigParser(delimiters=["="])
    settings.read(ROOT / "settings.ini")
    experiments = {Requirement(r).name for r in settings["DEFAULT"]["experiments_requirements"].split()}
    assert experiments == set(cli.EXPERIMENTS_EXTRA.values()) == names("experiments")
    assert not experiments & names() and "scipy" in names() and "trl" in names()
    assert experiments <= names("dev") and "pytest" in names("dev")


def test_denser_is_the_wheels(venv, elsewhere):
    done = run([venv / "python", "-c", "import denser, denser.execute, denser.train; print(denser.__file__); "
                "print(denser.execute.EXPERIMENT_NOTEBOOKS); print(denser.train.config_dir())"], cwd=elsewhere)
    module, experiments, configs = map(Path, done.stdout.split())
    environment = venv.parent
    assert module.is_relative_to(environment) and not module.is_relative_to(ROOT)
    assert experiments == module.parent / "experiments" and configs == module.parent / "configs"
    listed = run([venv / "denser", "reproduce", "--list"], cwd=elsewhere).stdout
    assert sorted(line.split()[0] for line in listed.splitlines()) == sorted(
        p.stem for p in (ROOT / "nbs" / "experiments").glob("*.yaml"))


def test_reproduce_ci_tiny_from_the_wheel(venv, elsewhere):
    run([venv / "denser", "reproduce", "ci-tiny", "--runs-dir", elsewhere / "runs"], cwd=elsewhere, timeout=600)
    experiment = elsewhere / "runs" / "ci-tiny"
    assert (experiment / "results.md").exists() and (experiment / "report.ipynb").exists()
    for name in ("grpo-s0", "denser-s0"):
        assert (experiment / name / "train.ipynb").exists(), name


def test_train_with_a_shipped_config_from_the_wheel(venv, elsewhere):
    out = elsewhere / "tiny"
    run([venv / "denser", "train", "--config", "configs/tiny.yaml", "--max_steps", "1", "--max_train_samples", "8",
         "--max_completion_length", "8", "--logging_steps", "1", "--output_dir", out], cwd=elsewhere, timeout=300)
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 1
    assert (out / "model.safetensors").exists() and "## DenseR" in (out / "README.md").read_text()


@pytest.mark.parametrize("command", [["reproduce", "ci-tiny"], ["walkthrough"]])
def test_notebook_commands_name_the_missing_extra(command, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "papermill", None)  # what an environment without the extra looks like
    assert cli.main(command) == 2
    assert capsys.readouterr().err == (f"denser {command[0]}: error: papermill not installed; it comes with the "
                                       "experiments extra: pip install 'denser[experiments]'\n")


def test_train_names_the_missing_extra_of_reasoning_gym_tasks(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)
    monkeypatch.setitem(sys.modules, "reasoning_gym.factory", None)
    assert cli.main(["train", "--config", "tiny"]) == 2
    assert capsys.readouterr().err == ("denser train: error: reasoning-gym not installed; it comes with the "
                                       "experiments extra: pip install 'denser[experiments]'\n")


def test_smollm2_names_the_missing_extra_of_gguf(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DENSER_CACHE", str(tmp_path))  # no converted copy: the GGUF would have to be read
    monkeypatch.setitem(sys.modules, "gguf", None)
    assert cli.main(["train", "--config", "smollm2-arithmetic", "--output_dir", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == ("denser train: error: gguf not installed; it comes with the experiments extra: "
                                       "pip install 'denser[experiments]'\n")


def test_every_third_party_import_of_the_package_is_a_declared_requirement(wheel):
    "The wheel's Requires-Dist (core or experiments extra) covers every module `denser/*.py` imports."
    import ast
    import importlib.metadata

    metadata = zipfile.ZipFile(wheel).read(f"denser-{denser.__version__}.dist-info/METADATA").decode()
    declared = {Requirement(line.removeprefix("Requires-Dist: ")).name.lower().replace("_", "-")
                for line in metadata.splitlines() if line.startswith("Requires-Dist: ")}
    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for path in (ROOT / "denser").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name in distributions and name != "denser"}
    missing = {name: distributions[name] for name in third_party
               if not {d.lower().replace("_", "-") for d in distributions[name]} & declared}
    assert missing == {}, f"imported but not required by the wheel: {missing}"


def test_the_home_page_and_the_sidebar_list_every_notebook():
    "nbs/index.ipynb links every notebook, and the docs sidebar (_quarto.yml) lists every one."
    import json
    import yaml
    root = Path(__file__).resolve().parents[1]
    notebooks = {str(p.relative_to(root / "nbs")) for p in (root / "nbs").glob("**/*.ipynb")
                 if p.name != "index.ipynb" and not p.name.startswith("_") and ".ipynb_checkpoints" not in str(p)}
    index = "".join(line for cell in json.loads((root / "nbs" / "index.ipynb").read_text())["cells"] for line in cell["source"])
    assert {n for n in notebooks if f"({n})" not in index} == set()
    sidebar = yaml.safe_load((root / "_quarto.yml").read_text())["website"]["sidebar"]["contents"]
    listed = {entry for item in sidebar for entry in ([item] if isinstance(item, str) else item["contents"])}
    assert {f"nbs/{n}" for n in notebooks} - listed == set()


def test_kept_outputs_must_come_from_the_current_source(tmp_path):
    "`.ci/figures.py check`: outputs only in keep-output cells, stamped with the hash of the source that made them."
    import importlib.util
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("figures", root / ".ci" / "figures.py")
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    cell = {"cell_type": "code", "metadata": {"tags": ["keep-output"]}, "source": ["plt.plot([1, 2])"], "outputs": []}
    figure = {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}
    path = tmp_path / "n.ipynb"

    def found(*cells):
        path.write_text(json.dumps({"cells": list(cells)}))
        return figures.problems(path)

    assert "without outputs" in found(cell)[0]
    stamped = {**figure, "metadata": {"denser": {"source_sha": figures.source_sha(cell)}}}
    assert found({**cell, "outputs": [stamped]}) == []
    edited = {**cell, "source": ["plt.plot([1, 3])"], "outputs": [stamped]}
    assert "made by other code" in found(edited)[0]
    assert "outside a `keep-output` cell" in found({**cell, "metadata": {}, "outputs": [figure]})[0]
    assert all(not figures.problems(p) for p in figures.notebooks())  # the committed notebooks pass
