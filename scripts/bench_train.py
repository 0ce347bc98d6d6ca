"""PyTorch CPU side of scripts/bench-train: SimCLR steps (two views, NT-Xent τ = 0.2, SGD momentum
0.9) of Tessera's architectures (tessera_torch.py), source images per CPU second, one JSON line."""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import tessera_torch  # noqa: E402


def nt_xent(z, tau):
    n = z.shape[0]
    u = F.normalize(z, dim=1)
    s = (u @ u.t() / tau).masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(s, (torch.arange(n) + n // 2) % n)


def main():
    backbone, size, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    f = tessera_torch.feature_dim(backbone)
    net = nn.Sequential(tessera_torch.backbone(backbone), nn.Linear(f, 256), nn.ReLU(), nn.Linear(256, 128))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x = torch.rand(2 * batch, 3, size, size) * 2 - 1

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nt_xent(net(x), 0.2)
        loss.backward()
        opt.step()

    step()  # warm-up (allocator, oneDNN primitive caches)
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = steps * batch
    print(json.dumps({"backbone": backbone, "size": size, "batch": batch, "steps": steps, "torch": torch.__version__,
                      "images_per_cpu_s": round(n / cpu, 2), "images_per_s": round(n / wall, 2)}))


main()
