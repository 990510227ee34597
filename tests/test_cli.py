import subprocess
import sys
from pathlib import Path

import denser


def denser_command(*args):
    "Run the installed `denser` console script."
    return subprocess.run([str(Path(sys.executable).parent / "denser"), *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    assert denser_command("--version").stdout.strip() == f"denser {denser.__version__}"
    help_text = denser_command("--help").stdout
    assert "walkthrough" in help_text and "--version" in help_text


def test_unknown_command_lists_valid_ones():
    result = denser_command("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_every_registered_command_has_its_module():
    import importlib

    from denser.cli import COMMANDS

    for name, (module_name, _) in COMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), name
