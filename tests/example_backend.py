"""backend=example: two plain tensors, autograd for the gradients, the SGD update written out."""
import torch

from w2v.backends import Backend, register
from w2v.backends.base import FLOAT_BYTES


@register("example")
class PlainTensorBackend(Backend):
    data_parallel = None  # its update bypasses torch.optim: refused under torchrun
    updates_in_place = True

    def __init__(self, input_init: torch.Tensor, output_init: torch.Tensor):
        super().__init__()
        self.tables = torch.nn.ParameterList([torch.nn.Parameter(t.clone()) for t in (input_init, output_init)])

    def input_weights(self):
        return self.tables[0].detach()

    def output_weights(self):
        return self.tables[1].detach()

    def lookup_input(self, ids):
        return self.tables[0][ids]

    def lookup_output(self, ids):
        return self.tables[1][ids]

    def train_step(self, objective, batch, lr):
        loss = objective.loss(self, batch).sum()
        gradients = torch.autograd.grad(loss, list(self.tables))
        with torch.no_grad():
            for table, gradient in zip(self.tables, gradients):
                table -= lr * gradient
        return loss.detach()

    @classmethod
    def estimate_bytes(cls, vocab_size, dim, objective, batch_size, device_type="cpu", world_size=1,
                       sync_method="auto"):
        table = vocab_size * dim * FLOAT_BYTES  # each table and its dense gradient, rows and their gradients
        return {"tables": 4 * table, "batch": 4 * cls.looked_up_bytes(dim, objective, batch_size),
                "copies": 2 * table if device_type == "cpu" else 0, "sync": 0}
