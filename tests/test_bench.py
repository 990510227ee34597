"""`denser bench`: the dense reference agrees with `token_weights` and the loop twin; the command runs on a tiny size.

No timing or memory assertions: those are measured by `denser bench`, not tested.
"""
import argparse
import json

import pytest
import torch
from hypothesis import given, settings

from denser import bench, cli
from denser.weights import token_weights
from denser.reference import dense_token_weights, loop_token_weights
from strategies import batches


@settings(max_examples=40, deadline=None)
@given(batches())
def test_dense_reference_equals_token_weights_and_loop_twin(batch):
    "All three in float64, so that float32 rounding (amplified where a completion's divergences are tiny) stays out."
    args = batch["hidden"].double(), batch["advantages"], batch["mask"], batch["num_generations"]
    weights, cross, within = dense_token_weights(*args, batch["window_size"])
    fast = token_weights(*args, window_size=batch["window_size"])
    slow_weights, slow_cross, slow_within = loop_token_weights(*args, batch["window_size"])
    torch.testing.assert_close(weights, fast.weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, slow_weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(cross.double(), slow_cross, atol=1e-5, rtol=0, equal_nan=True)
    torch.testing.assert_close(within.double(), slow_within, atol=1e-5, rtol=0, equal_nan=True)


def test_dense_reference_on_bench_inputs_and_rollout_subset():
    hidden, advantages, mask = bench.bench_inputs(96, num_generations=8, dim=16)
    dense = dense_token_weights
    full = dense(hidden, advantages, mask, 8)[0]
    torch.testing.assert_close(full, token_weights(hidden, advantages, mask, 8).weights, atol=1e-5, rtol=0)
    subset = dense(hidden, advantages, mask, 8, rollouts=[0])[0]
    torch.testing.assert_close(subset[0], full[0], atol=0, rtol=0)
    assert (subset[1:] == 1).all()


def test_bench_command_runs_on_a_tiny_size(tmp_path):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--lengths", "24", "--num-generations", "4", "--dim", "8", "--window-size", "2",
                              "--repeats", "1", "--dense-repeats", "1", "--out", str(tmp_path)])
    assert bench.run(args) == 0
    results = json.loads((tmp_path / "bench.json").read_text())
    row = results["rows"][0]
    assert row["length"] == 24 and row["max_abs_diff"] <= 1e-5
    assert row["dense"]["scale"] == 1 and row["token_weights"]["peak_kib"] >= 0
    assert "| 24 |" in (tmp_path / "bench.md").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--lengths", "0"], "--lengths must be >= 1, got 0"),
    (["--lengths", "256", "-4"], "--lengths must be >= 1, got -4"),
    (["--num-generations", "0"], "--num-generations must be >= 2, got 0"),
    (["--dim", "0"], "--dim must be >= 1, got 0"),
    (["--window-size", "-1"], "--window-size must be >= 0, got -1"),
    (["--threads", "0"], "--threads must be >= 1, got 0"),
    (["--repeats", "0"], "--repeats must be >= 1, got 0"),
    (["--dense-repeats", "0"], "--dense-repeats must be >= 1, got 0"),
])
def test_impossible_options_end_in_one_line_before_measuring(flags, message, tmp_path, capsys):
    assert cli.main(["bench", *flags, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"denser bench: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_an_unwritable_out_ends_in_one_line_before_measuring(tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("")
    assert cli.main(["bench", "--out", str(tmp_path / "afile" / "sub")]) == 2
    assert capsys.readouterr().err == (f"denser bench: error: --out '{tmp_path / 'afile' / 'sub'}' is not a writable "
                                       "directory: Not a directory\n")

    def refuse(*args, **kwargs):  # as root, permissions do not stop writes: the write is made to fail
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "NamedTemporaryFile", refuse)
    assert cli.main(["bench", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"denser bench: error: --out '{tmp_path}' is not a writable directory: Permission denied\n"
