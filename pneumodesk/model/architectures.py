"""Network architectures by name. Every one takes a single grey channel and returns one logit per image.

Invariants that later layers rely on: GroupNorm only (no BatchNorm: DP-SGD needs per-sample gradients and
federated non-IID data breaks running statistics), no in-place activations and no in-place residual sums (both
break Opacus' per-sample hooks), and ``grad_cam_layer`` names the last feature map for heat maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import UnknownArchitectureError


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=min(8, channels // 4), num_channels=channels)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with GroupNorm and a projected shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels)
        self.act = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), _norm(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class PneumoNet(nn.Module):
    """A compact residual network for grey chest X-rays; one stride-2 stage per width."""

    def __init__(self, widths: Sequence[int], depths: Sequence[int], dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, stride=2, padding=1, bias=False), _norm(widths[0]), nn.ReLU()
        )
        stages: list[nn.Module] = []
        in_channels = widths[0]
        for width, depth in zip(widths, depths, strict=True):
            blocks = [ResidualBlock(in_channels, width, stride=2)]
            blocks += [ResidualBlock(width, width, stride=1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = width
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels, 1))

    @property
    def grad_cam_layer(self) -> nn.Module:
        return self.features[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (n, channels): the pooled last feature map, before dropout and the linear layer."""
        return self.head[1](self.head[0](self.features(self.stem(x))))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """Logits (n, 1) from ``embed``'s features; ``classify(embed(x))`` is ``forward(x)``."""
        return self.head[3](self.head[2](embedding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.stem(x)))


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    build: Callable[[], nn.Module]


_REGISTRY: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            "pneumonet-s",
            "compact residual CNN, widths 24-48-96-192, GroupNorm (~0.6 M parameters)",
            lambda: PneumoNet((24, 48, 96, 192), (1, 1, 1, 1)),
        ),
        Architecture(
            "pneumonet-m",
            "residual CNN, widths 32-64-128-256, GroupNorm (~2 M parameters)",
            lambda: PneumoNet((32, 64, 128, 256), (1, 1, 2, 1)),
        ),
        Architecture(
            "pneumonet-tiny",
            "very small residual CNN for tests and quick experiments",
            lambda: PneumoNet((8, 16, 16, 32), (1, 1, 1, 1), dropout=0.0),
        ),
    )
}


def architecture_names() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str) -> nn.Module:
    """A freshly initialised network of the named architecture (from this node's own registry)."""
    try:
        return _REGISTRY[name].build()
    except KeyError:
        known = ", ".join(architecture_names())
        raise UnknownArchitectureError(
            f"Unknown model architecture {name!r}; this PneumoDesk knows: {known}."
        ) from None
