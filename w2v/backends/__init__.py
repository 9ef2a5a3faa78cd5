"""Embedding backends: where the two word2vec tables live and how they are updated.

base.py declares the interface and the capabilities; registry.py maps backend.name to a class;
each backend sits in its own module and registers itself there:
- autograd.py: dense, sparse, onehot (autograd + torch.optim.SGD);
- offload.py:  tables in host memory, rows moved per step;
- fused.py:    hand-written steps without autograd (the C, Triton and torch kernels in w2v/kernels/).
"""
from . import autograd, fused, offload  # noqa: F401  each registers its backends
from .autograd import AutogradBackend, DenseBackend, OneHotBackend, SparseBackend
from .base import Backend, init_tables
from .registry import BACKENDS, check_loss, make_backend, register

__all__ = ["BACKENDS", "AutogradBackend", "Backend", "DenseBackend", "OneHotBackend", "SparseBackend", "check_loss",
           "init_tables", "make_backend", "register"]
