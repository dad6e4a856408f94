"""Training-side helpers that change what the model sees."""

import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from train import freq_warp  # noqa: E402


def test_warp_of_one_is_identity():
    x = torch.randn(2, 7, 80)
    assert torch.allclose(freq_warp(x.clone(), [1.0, 1.0]), x, atol=1e-6)


def test_warp_keeps_ends_and_moves_the_middle():
    ramp = torch.arange(80, dtype=torch.float32).expand(1, 3, 80).clone()
    for a in (0.88, 1.12):
        y = freq_warp(ramp.clone(), [a])[0, 0]
        assert y[0] == 0 and y[-1] == 79
        # a ramp reads back the position it sampled: alpha * j below the knee
        assert abs(float(y[40]) - a * 40) < 1e-4
        assert bool((y[1:] >= y[:-1]).all())  # monotonic: no bins swap places
