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

sys.path.insert(0, __import__('os').path.dirname(__file__))
from tessera_torch import ConvNet, DINOHead, ResNet  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(1)
DT = torch.float64


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
    net = Net(ConvNet([4, 8, 8]), nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)))
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
