"""The four networks: a small CNN for the CPU default and the paper's ResNet18/34 and VGG16-BN.

Two rules shape every class here.

1. Normalisation is the model's first module, so the package feeds raw [0, 1] pixels everywhere and
   NatMU blends raw pixels, as in the official code.
2. Captum's LRP must be exact (see the book's LRP chapter): every skip addition goes through a module
   (Captum's ``Addition_Module``), every ReLU and pooling use has its own module, flattening is
   ``torch.flatten``, and there is no ``nn.Identity``, ``nn.Flatten`` or empty ``nn.Sequential``.
"""

from __future__ import annotations

import torch
from captum.attr._utils.custom_modules import Addition_Module
from torch import Tensor, nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` with the statistics stored as buffers (saved with the weights)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def conv_bn(cin: int, cout: int, stride: int = 1, kernel: int = 3, bias: bool = False) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=bias), nn.BatchNorm2d(cout)]


class SmallCNN(nn.Module):
    """Two conv-BN-ReLU-maxpool blocks (16, 32 channels) and a 128-unit hidden layer.

    About 1.2 s per 10k-image Fashion-MNIST epoch on two CPU cores and still able to memorise its
    training set (99.3% train, 89.2% test after 20 epochs); width 32 gains 0.6 points of test
    accuracy for 2.2x the time, which the CPU budget of the book cannot afford."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, mean, std, width: int = 16):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            *conv_bn(in_channels, width), nn.ReLU(), nn.MaxPool2d(2),
            *conv_bn(width, 2 * width), nn.ReLU(), nn.MaxPool2d(2))
        self.hidden = nn.Linear(2 * width * (image_size // 4) ** 2, 128)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.features(self.normalize(x)), 1)
        return self.fc(self.relu(self.hidden(x)))


class BasicBlock(nn.Module):
    """ResNet basic block with the skip addition as a module (exact LRP) and one ReLU per use."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(cin, cout, stride)
        self.relu1 = nn.ReLU()
        self.conv2, self.bn2 = conv_bn(cout, cout)
        self.shortcut = nn.Sequential(*conv_bn(cin, cout, stride, kernel=1)) if stride != 1 or cin != cout else None
        self.add = Addition_Module()
        self.relu2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(self.add(out, x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    """CIFAR-style ResNet (3x3 stem, no max-pool, adaptive average pool so 64x64 inputs work)."""

    def __init__(self, blocks: list[int], num_classes: int, in_channels: int, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1, self.bn1 = conv_bn(in_channels, 64)
        self.relu = nn.ReLU()
        layers, cin = [], 64
        for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stage = [BasicBlock(cin if j == 0 else width, width, 2 if i > 0 and j == 0 else 1) for j in range(n)]
            layers.append(nn.Sequential(*stage))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class VGG16BN(nn.Module):
    """VGG16 with BatchNorm as in the official CIFAR-10 code: biased 3x3 convs, five max-pools, one
    Linear(512, K) head (inputs must be 32x32)."""

    CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

    def __init__(self, num_classes: int, in_channels: int, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        layers, cin = [], in_channels
        for v in self.CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [*conv_bn(cin, v, bias=True), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.features(self.normalize(x)), 1))


def _builders():
    return {
        "small_cnn": lambda k, c, s, m, d: SmallCNN(k, c, s, m, d),
        "resnet18": lambda k, c, s, m, d: ResNet([2, 2, 2, 2], k, c, m, d),
        "resnet34": lambda k, c, s, m, d: ResNet([3, 4, 6, 3], k, c, m, d),
        "vgg16_bn": lambda k, c, s, m, d: VGG16BN(k, c, m, d),
    }


MODELS = tuple(_builders())


def build_model(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32,
                mean: tuple[float, ...] = (0.5,), std: tuple[float, ...] = (0.5,), seed: int = 0) -> nn.Module:
    """Build a freshly initialised network; the same arguments and seed give the same weights.

    The arguments are kept on the model (``model.spec``) so that Retrain can rebuild the original's
    initialisation without being told the architecture again."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    if len(mean) == 1:
        mean, std = mean * in_channels, std * in_channels
    spec = dict(name=name, num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                mean=tuple(mean), std=tuple(std), seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _builders()[name](num_classes, in_channels, image_size, spec["mean"], spec["std"])
    model.spec = spec
    return model


def model_for(name: str, data, seed: int = 0) -> nn.Module:
    """Build ``name`` sized for a :class:`~natmu_lite.datasets.Dataset` (classes, channels, size, norm)."""
    c, h, _ = data.shape
    return build_model(name, data.num_classes, c, h, data.mean, data.std, seed)
