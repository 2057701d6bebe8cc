"""A training step in the form a CUDA graph can capture: fixed input buffers, and an SGD update that
reads its learning rate and momentum from tensors.

OneCycleLR writes a new Python float into the param group's "lr" and "momentum" before every step.
A captured `optimizer.step()` would replay the values of the step it was captured in; so `TensorSGD`
keeps both in 0-dim tensors on the device, filled from the param group before each step, and updates
the optimizer's own momentum buffers in place, so that checkpoints keep torch's format and the
schedule stays torch's own. On the CPU the step runs eagerly: the tests compare it with torch's SGD
step for step. Capturing it (torch.cuda.graph) needs a GPU and is not done here yet.
Who uses it: `Trainer(static_step=True)` (helpers.training), which the GPU work on CUDA graphs
(a --cuda-graphs flag) will capture; until then only tests/machinery/test_static_step.py runs it.
"""

import torch
import torch.nn.functional as F


class TensorSGD:
    """torch's SGD update (momentum, no dampening, Nesterov or weight decay), with lr and momentum read
    from tensors: buf = momentum * buf + grad; param -= lr * buf.

    Build it after the optimizer's state is restored: it holds the optimizer's momentum buffers, which
    `load_state_dict` replaces. Buffers still missing are created as zeros: momentum * 0 + grad is the
    grad, which is what torch stores on its first step.
    """

    def __init__(self, optimizer: torch.optim.SGD):
        (group,) = optimizer.param_groups
        plain = {"dampening": 0, "nesterov": False, "weight_decay": 0, "maximize": False}
        if any(group[key] != value for key, value in plain.items()):
            raise ValueError(f"TensorSGD implements SGD with {plain} only")
        self.group = group
        self.params = list(group["params"])
        device = self.params[0].device
        self.lr = torch.zeros((), device=device)
        self.momentum = torch.zeros((), device=device)
        self.buffers = [optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p)) for p in self.params]

    def load_hyperparameters(self):
        """Copy the param group's current lr and momentum (set by the schedule) into the tensors."""
        self.lr.fill_(self.group["lr"])
        self.momentum.fill_(self.group["momentum"])

    @torch.no_grad()
    def step(self):
        """The update, from the gradients in each parameter's .grad."""
        torch._foreach_mul_(self.buffers, self.momentum)
        torch._foreach_add_(self.buffers, [p.grad for p in self.params])
        # addcmul rounds as torch's add_(buf, alpha=-lr) does: the same bits on the CPU.
        torch._foreach_addcmul_(self.params, self.buffers, [self.lr] * len(self.params), value=-1)


class StaticStep:
    """Forward, loss, backward and `TensorSGD` update of one batch, read from fixed input buffers.

    A full batch is copied into the buffers (allocated on the first call, in the batch's shape and
    memory format) and the step reads them there, as a captured graph would; a batch of another shape
    (the short last batch of an epoch) runs on its own tensors. Returns (loss, output).
    """

    def __init__(self, model, optimizer, autocast):
        self.model, self.autocast = model, autocast
        self.optimizer = optimizer
        self.sgd = TensorSGD(optimizer)
        self.images = self.labels = None

    def __call__(self, images, labels):
        self.sgd.load_hyperparameters()
        if self.images is None:
            self.images, self.labels = torch.empty_like(images), torch.empty_like(labels)
        if images.shape != self.images.shape:
            return self._step(images, labels)
        self.images.copy_(images)
        self.labels.copy_(labels)
        return self._step(self.images, self.labels)

    def _step(self, images, labels):
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            output = self.model(images)
            loss = F.nll_loss(output, labels)
        loss.backward()
        self.sgd.step()
        return loss, output
