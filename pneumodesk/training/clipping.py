"""DP-SGD's per-example gradient clipping for GroupNorm CNNs, without keeping every per-example gradient.

``PerExampleClipping`` turns one backward pass into ``Σ_i min(1, C / ‖g_i‖) g_i`` in ``p.grad`` (the clipped sum that
DP-SGD adds noise to), where ``g_i`` is the gradient of example i's own loss with respect to *all* trainable
parameters together, ``‖·‖`` its L2 norm and ``C`` the clipping bound.

How: forward hooks keep each layer's input; one ``autograd.grad`` call gives the gradient of the summed loss with
respect to each layer's output (no weight gradients are computed there). From (input, output gradient) per example:

- the squared norm of every layer's per-example gradient, exactly, by the cheapest of three equivalent routes:
  materialised through im2col (Opacus' ``unfold2d``) + batched matmul, through a grouped-convolution weight gradient
  (one group per example), or "ghost" norms ``Σ_{s,t} (a_s·a_t)(b_s·b_t)`` for layers with few output positions;
- then, per layer, the clip-weighted sum: a layer's weight gradient is linear in its output gradient, so
  ``Σ_i w_i g_i`` is the ordinary weight gradient of the output gradients scaled row-wise by ``w``.

Invariants the numbers rely on (checked when the clipper is built or used; ``supports`` says whether a model fits):
- every trainable parameter belongs to a ``Conv2d`` (groups 1, numeric padding, zero padding mode), ``Linear``
  (2-D input) or affine ``GroupNorm``, and each of those modules runs exactly once per forward pass;
- the loss is the *sum* of per-example losses and no layer mixes examples (no BatchNorm: Opacus' ``ModuleValidator``
  enforces it for the registry), so the gradient of example i's loss only involves row i of every tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from opacus.utils.tensor_utils import unfold2d
from torch import nn
from torch.nn.grad import conv2d_weight

from pneumodesk.errors import PneumoDeskError

_SUPPORTED = (nn.Conv2d, nn.Linear, nn.GroupNorm)

# weights (one per example) ↦ {parameter: Σ_i weights_i · g_i restricted to that parameter}
Finish = Callable[[torch.Tensor], dict[torch.Tensor, torch.Tensor]]


class UnsupportedLayerError(PneumoDeskError, RuntimeError):
    """The model has a trainable layer (or uses one in a way) that ``PerExampleClipping`` does not handle."""


def _layer_problem(module: nn.Module) -> str | None:
    if not any(p.requires_grad for p in module.parameters(recurse=False)):
        return None
    if type(module) not in _SUPPORTED:  # exact types: a subclass may change what forward computes
        return f"{type(module).__name__} has trainable parameters"
    if type(module) is nn.Conv2d and (
        module.groups != 1 or isinstance(module.padding, str) or module.padding_mode != "zeros"
    ):
        return f"{module!r} (only groups=1, numeric zero padding)"
    return None


def supports(model: nn.Module) -> bool:
    """Whether every trainable parameter of ``model`` sits in a layer ``PerExampleClipping`` handles."""
    return all(_layer_problem(module) is None for module in model.modules())


def _trainable(parameter: torch.Tensor | None) -> bool:
    """Whether a layer's ``bias`` (or weight) exists and is trained; torch types ``bias`` as always present."""
    return parameter is not None and parameter.requires_grad


def _clip_factors(squared_norms: torch.Tensor, max_grad_norm: float) -> torch.Tensor:
    """``min(1, C / (‖g_i‖ + 1e-6))``: Opacus' formula, so ‖w_i g_i‖ ≤ C for every example."""
    return (max_grad_norm / (squared_norms.sqrt() + 1e-6)).clamp(max=1.0)


class PerExampleClipping:
    """Hooks on ``model`` that turn a summed loss into the clipped per-example gradient sum in ``p.grad``.

    Use: ``with clipping.recording(): loss = loss_fn(model(x), y, reduction="sum")`` then
    ``clipping.clip_into_grad(loss)``; ``close()`` removes the hooks.
    """

    def __init__(self, model: nn.Module, max_grad_norm: float) -> None:
        problems = [problem for module in model.modules() if (problem := _layer_problem(module))]
        if problems:
            raise UnsupportedLayerError("Per-example clipping cannot handle: " + "; ".join(problems))
        self.max_grad_norm = float(max_grad_norm)
        self.layers = [
            module
            for module in model.modules()
            if type(module) in _SUPPORTED and any(p.requires_grad for p in module.parameters(recurse=False))
        ]
        self.parameters = [p for layer in self.layers for p in layer.parameters(recurse=False) if p.requires_grad]
        self._recording = False
        self._seen: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        self._hooks = [layer.register_forward_hook(self._keep) for layer in self.layers]

    def _keep(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if not self._recording:
            return
        if module in self._seen:
            raise UnsupportedLayerError(f"{module!r} ran twice in one forward pass (shared weights).")
        if isinstance(module, nn.Linear) and inputs[0].dim() != 2:
            raise UnsupportedLayerError(f"{module!r} got a {inputs[0].dim()}-D input; only (batch, features).")
        self._seen[module] = (inputs[0].detach(), output)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Keep the layers' inputs and outputs of the forward pass run inside this block."""
        self._seen.clear()
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        self._seen.clear()

    def clip_into_grad(self, summed_loss: torch.Tensor) -> torch.Tensor:
        """Set ``p.grad = Σ_i min(1, C/‖g_i‖) g_i`` for every trainable parameter; return the per-example ‖g_i‖.

        ``summed_loss`` must be the sum over the batch of per-example losses of the forward pass just recorded.
        """
        missing = [layer for layer in self.layers if layer not in self._seen]
        if missing:
            raise UnsupportedLayerError(f"{len(missing)} trainable layer(s) did not run in the recorded forward pass.")
        outputs = [self._seen[layer][1] for layer in self.layers]
        grads = torch.autograd.grad(summed_loss, outputs, allow_unused=True)
        with torch.no_grad():
            examples = outputs[0].shape[0]
            squared = torch.zeros(examples, dtype=torch.float32, device=outputs[0].device)
            pending = []
            for layer, grad in zip(self.layers, grads, strict=True):
                inputs = self._seen[layer][0]
                if grad is None:  # the layer's output does not reach the loss: zero gradient
                    grad = torch.zeros_like(self._seen[layer][1])
                norms, finish = _per_example(layer, inputs, grad)
                squared += norms
                pending.append(finish)
            self._seen.clear()
            weights = _clip_factors(squared, self.max_grad_norm)
            for finish in pending:
                for parameter, value in finish(weights).items():
                    parameter.grad = value.reshape(parameter.shape).contiguous()
        return squared.sqrt()


def _squared_norms(rows: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of each row of an (N, d) tensor (one pass, no temporary)."""
    return torch.linalg.vector_norm(rows, dim=1).square()


def _per_example(layer: nn.Module, inputs: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, Finish]:
    """(per-example squared gradient norm of the layer's parameters, weights ↦ {parameter: weighted sum})."""
    if isinstance(layer, nn.Conv2d):
        return _conv(layer, inputs, grad)
    if isinstance(layer, nn.Linear):
        return _linear(layer, inputs, grad)
    if isinstance(layer, nn.GroupNorm):
        return _group_norm(layer, inputs, grad)
    raise UnsupportedLayerError(f"{layer!r} is not a layer per-example clipping handles.")


def _linear(layer: nn.Linear, inputs: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, Finish]:
    # Per-example weight gradient is the outer product grad_i ⊗ input_i: ‖·‖² = ‖grad_i‖² ‖input_i‖².
    grad_squared = _squared_norms(grad)
    squared = grad_squared * _squared_norms(inputs)
    train_bias = _trainable(layer.bias)
    if train_bias:
        squared = squared + grad_squared

    def finish(weights: torch.Tensor) -> dict[torch.Tensor, torch.Tensor]:
        scaled = grad * weights[:, None]
        sums: dict[torch.Tensor, torch.Tensor] = {}
        if layer.weight.requires_grad:
            sums[layer.weight] = scaled.t() @ inputs
        if train_bias:
            sums[layer.bias] = scaled.sum(0)
        return sums

    return squared, finish


def _group_norm(layer: nn.GroupNorm, inputs: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, Finish]:
    examples = inputs.shape[0]
    spatial = tuple(range(2, inputs.dim()))
    per_weight = (F.group_norm(inputs, layer.num_groups, eps=layer.eps) * grad).sum(spatial).reshape(examples, -1)
    per_bias = grad.sum(spatial).reshape(examples, -1)
    squared = torch.zeros(examples, dtype=grad.dtype, device=grad.device)
    if layer.weight.requires_grad:
        squared += _squared_norms(per_weight)
    if layer.bias.requires_grad:
        squared += _squared_norms(per_bias)

    def finish(weights: torch.Tensor) -> dict[torch.Tensor, torch.Tensor]:
        sums: dict[torch.Tensor, torch.Tensor] = {}
        if layer.weight.requires_grad:
            sums[layer.weight] = weights @ per_weight
        if layer.bias.requires_grad:
            sums[layer.bias] = weights @ per_bias
        return sums

    return squared, finish


def _conv_route(layer: nn.Conv2d, positions: int) -> str:
    """The fastest exact route to a layer's per-example norms on CPU (measured in training on pneumonet-tiny).

    Ghost norms cost ~N·T²·(C_out + C_in·k²) and materialising ~N·T·C_out·C_in·k², but Gram matrices of small
    T are cache-friendly, so ghost wins up to about twice the materialising estimate (T ≤ 16 at 28 px).
    """
    channels_out = layer.out_channels
    patch = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
    if positions * (channels_out + patch) <= 2 * channels_out * patch:
        return "ghost"
    if layer.kernel_size == (1, 1) or layer.in_channels == 1:
        return "im2col"  # the im2col copy is a strided slice, or tiny
    return "grouped"


def _conv(layer: nn.Conv2d, inputs: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, Finish]:
    examples, channels_out = grad.shape[:2]
    flat_grad = grad.reshape(examples, channels_out, -1)  # (N, C_out, T)
    positions = flat_grad.shape[2]
    train_weight = layer.weight.requires_grad
    bias = layer.bias if _trainable(layer.bias) else None
    per_bias = flat_grad.sum(2) if bias is not None else None
    squared = torch.zeros(examples, dtype=grad.dtype, device=grad.device)
    if per_bias is not None:
        squared = squared + _squared_norms(per_bias)
    per_weight = None  # (N, C_out·C_in·k·k) when materialised
    if train_weight:
        route = _conv_route(layer, positions)
        if route == "grouped":
            # Per-example weight gradients as the weight gradient of one convolution with a group per example.
            per_weight = torch.ops.aten.convolution_backward(
                grad.reshape(1, examples * channels_out, *grad.shape[2:]),
                inputs.reshape(1, examples * layer.in_channels, *inputs.shape[2:]),
                torch.empty(
                    (examples * channels_out, layer.in_channels, *layer.kernel_size),
                    dtype=inputs.dtype,
                    device=inputs.device,
                ),  # only its shape is read: the input gradient is not asked for
                None,
                list(layer.stride),
                list(layer.padding),
                list(layer.dilation),
                False,
                [0, 0],
                examples,
                [False, True, False],
            )[1].reshape(examples, -1)
            squared = squared + _squared_norms(per_weight)
        else:
            patches = unfold2d(
                inputs, kernel_size=layer.kernel_size, padding=layer.padding, stride=layer.stride,
                dilation=layer.dilation,
            )  # (N, C_in·k·k, T)
            if route == "im2col":
                per_weight = torch.bmm(flat_grad, patches.transpose(1, 2)).reshape(examples, -1)
                squared = squared + _squared_norms(per_weight)
            else:
                gram_inputs = torch.bmm(patches.transpose(1, 2), patches)
                gram_grads = torch.bmm(flat_grad.transpose(1, 2), flat_grad)
                squared = squared + (gram_inputs * gram_grads).sum((1, 2))

    def finish(weights: torch.Tensor) -> dict[torch.Tensor, torch.Tensor]:
        sums: dict[torch.Tensor, torch.Tensor] = {}
        if train_weight:
            if per_weight is not None:
                sums[layer.weight] = weights @ per_weight
            else:
                sums[layer.weight] = conv2d_weight(
                    inputs, layer.weight.shape, grad * weights.view(-1, 1, 1, 1), layer.stride, layer.padding,
                    layer.dilation, layer.groups,
                )
        if bias is not None and per_bias is not None:
            sums[bias] = weights @ per_bias
        return sums

    return squared, finish
