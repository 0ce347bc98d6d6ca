"""PyTorch versions of Tessera's backbones and heads, with the same state_dict names, so a Tessera
checkpoint loads with load_state_dict(strict=True):

    from safetensors.torch import load_file
    import tessera_torch
    state = load_file("out/pbc-simclr/checkpoint.safetensors")
    backbone = tessera_torch.backbone("resnet8")            # the checkpoint's metadata "backbone"
    backbone.load_state_dict(tessera_torch.part(state, "backbone."))
    features = backbone.eval()(images)                     # [N, 3, H, W] → [N, F]

Architectures: "convnet4", "resnet8", "resnet14", "convnet:W1,W2,…", "resnet:W1,…:B1,…".
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    def __init__(self, widths, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        c = widths[0]
        self.stages = len(widths)
        for s, (w, b) in enumerate(zip(widths, blocks)):
            layers = []
            for i in range(b):
                layers.append(BasicBlock(c, w, 2 if (s > 0 and i == 0) else 1))
                c = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for s in range(self.stages):
            x = getattr(self, f"layer{s + 1}")(x)
        return x.mean(dim=(2, 3))


class ConvNet(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.features = nn.Module()
        c = 3
        for i, w in enumerate(widths):
            mods = [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            if i < len(widths) - 1:
                mods.append(nn.MaxPool2d(2))
            self.features.add_module(str(i), nn.Sequential(*mods))
            c = w
        self.n = len(widths)

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self.features, str(i))(x)
        return x.mean(dim=(2, 3))


class DINOHead(nn.Module):
    def __init__(self, din, hidden, bottleneck, k):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(din, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, k, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


def parse(spec):
    named = {"convnet4": ("convnet", [32, 64, 128, 256], []), "resnet8": ("resnet", [32, 64, 128], [1, 1, 1]),
             "resnet14": ("resnet", [32, 64, 128], [2, 2, 2])}
    if spec in named:
        return named[spec]
    parts = spec.split(":")
    ints = lambda s: [int(v) for v in s.split(",")]
    if parts[0] == "convnet":
        return ("convnet", ints(parts[1]), [])
    return ("resnet", ints(parts[1]), ints(parts[2]))


def backbone(spec):
    kind, widths, blocks = parse(spec)
    return ConvNet(widths) if kind == "convnet" else ResNet(widths, blocks)


def feature_dim(spec):
    return parse(spec)[1][-1]


def part(state, prefix):
    """The entries of a state dict under `prefix`, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
