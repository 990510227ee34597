import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))  # the naive loop twins in tests/naive.py
# no per-example time limit: the tests share 2 cores (two pytest workers, other jobs), and a slow example is not a bug
settings.register_profile("shared-cores", deadline=None)
settings.load_profile("shared-cores")


@pytest.fixture(scope="module")
def tiny():
    "Both tiny architectures, loaded once per test module; tests deep-copy the model they train."
    from denser.models import load
    return {name: load(name) for name in ("tiny-qwen3", "tiny-llama")}


@pytest.fixture(scope="module")
def prompts():
    "16 arithmetic prompts in TRL's conversational format."
    from datasets import Dataset
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {a} + {b}?"}]
                                         for a in range(4) for b in range(4)]})
