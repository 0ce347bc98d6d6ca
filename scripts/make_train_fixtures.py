"""Reference forward losses and gradients from PyTorch for Tessera's trainer parity tests.

Builds tiny versions of Tessera's architectures with the same module names (so state_dict keys
match), runs one training-mode forward + backward in float64, and saves per case a safetensors file:
  param.<name>   initial parameters and buffers (float32, what Tessera loads)
  grad.<name>    d loss / d parameter (float64 reference, stored float32)
  after.<name>   batch-norm running statistics after the forward
  input          the NCHW batch; extra inputs per loss (teacher, centre, labels)
  loss           scalar
Usage: scripts/make-train-fixtures  (writes data/train/parity-*.safetensors)
"""
import sys
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_num_threads(1)
DT = torch.float64


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet(nn.Module):
    def __init__(self, widths, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        c = widths[0]
        for s, (w, b) in enumerate(zip(widths, blocks)):
            layers = []
            for i in range(b):
                layers.append(Block(c, w, 2 if (s > 0 and i == 0) else 1))
                c = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
        self.stages = len(widths)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for s in range(self.stages):
            x = getattr(self, f"layer{s + 1}")(x)
        return x.mean(dim=(2, 3))


class ConvNet:
    # Names "features.0.0.weight" need a container called features with children 0, 1, …
    @staticmethod
    def build(widths):
        m = nn.Module()
        feats = nn.Module()
        c = 3
        for i, w in enumerate(widths):
            mods = [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            if i < len(widths) - 1:
                mods.append(nn.MaxPool2d(2))
            feats.add_module(str(i), nn.Sequential(*mods))
            c = w
        m.add_module("features", feats)
        m.n = len(widths)

        def forward(x):
            for i in range(m.n):
                x = getattr(feats, str(i))(x)
            return x.mean(dim=(2, 3))
        m.forward = forward
        return m


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


class Net(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        return self.head(self.backbone(x))


def nt_xent(z, tau):
    n = z.shape[0]
    u = F.normalize(z, dim=1)
    s = u @ u.t() / tau
    s = s.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    target = (torch.arange(n) + n // 2) % n
    return F.cross_entropy(s, target)


def dino_loss(student, teacher, center, batch, tau_s, tau_t):
    vs, vt = student.shape[0] // batch, teacher.shape[0] // batch
    q = F.softmax((teacher - center) / tau_t, dim=-1).chunk(vt)
    logp = F.log_softmax(student / tau_s, dim=-1).chunk(vs)
    total, terms = 0, 0
    for iq in range(vt):
        for v in range(vs):
            if v == iq:
                continue
            total = total + torch.sum(-q[iq] * logp[v], dim=-1).mean()
            terms += 1
    return total / terms


def triplet(e, labels, margin):
    d = torch.cdist(e, e) if False else torch.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1) + 1e-12)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos = d.masked_fill(~same | eye, float("-inf")).max(1).values
    neg = d.masked_fill(same, float("inf")).min(1).values
    return F.relu(pos - neg + margin).mean()


def export(name, net, x, loss_fn, extra):
    state = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
    net = net.to(DT)
    net.train()
    loss = loss_fn(net(x.to(DT)))
    loss.backward()
    out = {"param." + k: v.contiguous() for k, v in state.items()}
    for k, p in net.named_parameters():
        if p.grad is not None:
            out["grad." + k] = p.grad.float().contiguous()
    for k, v in net.state_dict().items():
        if "running" in k:
            out["after." + k] = v.float().contiguous()
    out["input"] = x.float().contiguous()
    out["loss"] = loss.detach().float().reshape(1)
    out.update({k: v.float().contiguous() for k, v in extra.items()})
    path = f"{sys.argv[1]}/parity-{name}.safetensors"
    save_file(out, path, metadata={"torch": torch.__version__, "loss": repr(loss.item())})
    print(f"{path}: loss {loss.item():.6f}")


def main():
    b = 4
    # ConvNet + SimCLR head, NT-Xent τ = 0.5 on 2B = 8 images of 16 px.
    torch.manual_seed(1)
    net = Net(ConvNet.build([4, 8, 8]), nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)))
    x = torch.rand(2 * b, 3, 16, 16) * 2 - 1
    export("convnet-ntxent", net, x, lambda z: nt_xent(z, 0.5), {})

    # ResNet + DINO head, DINO loss with 2 global + 2 local crops of the same size (the loss does not
    # care), teacher outputs and centre given.
    torch.manual_seed(2)
    net = Net(ResNet([4, 8], [1, 1]), DINOHead(8, 16, 8, 32))
    x = torch.rand(4 * b, 3, 12, 12) * 2 - 1
    teacher = torch.randn(2 * b, 32)
    center = torch.randn(32) * 0.1
    export("resnet-dino", net, x,
           lambda s: dino_loss(s, teacher.to(DT), center.to(DT), b, 0.1, 0.04), {"teacher": teacher, "center": center})

    # ResNet + embedding head, batch-hard triplet (margin 0.3) over two views per sample.
    torch.manual_seed(3)
    head = nn.Sequential()
    head.add_module("0", nn.Linear(8, 6))
    net = Net(ResNet([4, 8], [1, 1]), head)
    x = torch.rand(2 * b, 3, 12, 12) * 2 - 1
    labels = torch.arange(2 * b) % b
    export("resnet-triplet", net, x,
           lambda e: triplet(F.normalize(e, dim=1), labels, 0.3), {"labels": labels.float()})


main()
