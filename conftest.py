import os

# The tests' and doctests' models are tiny and the tests run one per core (pytest -n auto): one
# thread each for torch, BLAS and the processes they start, instead of all contending for every core.
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)
