"""DenseR: dense token-level advantages for GRPO from the policy's own hidden states.

This file is the only hand-written one in `denser/` (nbdev keeps only `__version__` in sync): it
names the public API and imports each piece lazily, so `denser --help` does not pay for torch.
"""
__version__ = "0.1.0"

_PUBLIC = {
    "token_weights": "denser.weights",
    "TokenWeights": "denser.weights",
    "capture_hidden_states": "denser.capture",
    "completion_states": "denser.capture",
    "windowed_similarity": "denser.align",
    "DenseRConfig": "denser.trainer",
    "DenseRTrainer": "denser.trainer",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'denser' has no attribute {name!r}")
