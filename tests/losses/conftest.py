"""Fixtures shared by the loss tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def simplex():
    """``simplex(n)``: n unit vectors in R^n with pairwise cosine -1/(n-1) (a regular simplex), the
    best-separated batch possible: with text = images it is a contrastive loss's global minimum."""
    def make(n: int) -> torch.Tensor:
        e = torch.eye(n, dtype=torch.float64)
        v = e - e.mean(0, keepdim=True)
        return v / v.norm(dim=1, keepdim=True)

    return make
