"""The backend registry: backend.name -> class. A backend module registers its class with @register("name")."""
from __future__ import annotations

from typing import Callable

import torch

from ..config import BackendConfig, W2VError
from .base import Backend

BACKENDS: dict[str, type[Backend]] = {}


def register(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator: make the backend buildable as backend=`name`."""
    def add(cls: type[Backend]) -> type[Backend]:
        if name in BACKENDS and BACKENDS[name] is not cls:
            raise ValueError(f"backend {name!r} is registered twice ({BACKENDS[name].__name__}, {cls.__name__})")
        cls.name = name
        BACKENDS[name] = cls
        return cls
    return add


def check_loss(backend: type[Backend], loss: str) -> None:
    """Refuse, in one line, a model.loss the backend cannot train (its `losses` capability), before anything is built."""
    if loss not in backend.losses:
        trains = sorted(name for name, cls in BACKENDS.items() if loss in cls.losses)
        raise W2VError(f"backend={backend.name} cannot train model.loss={loss} (it trains {', '.join(backend.losses)}); "
                       f"use model.loss={backend.losses[0]} or one of backend={', '.join(trains)}")


def make_backend(name: str, input_init: torch.Tensor, output_init: torch.Tensor, device: torch.device,
                 config: BackendConfig | None = None) -> Backend:
    """Build backend `name` with the given initial tables, on `device`; `config`: its backend.* keys."""
    if name not in BACKENDS:
        raise KeyError(f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name].create(input_init, output_init, device, config)
