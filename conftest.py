import torch

# The tests' and doctests' models are tiny: one thread avoids oversubscribing a small CI machine.
torch.set_num_threads(1)
