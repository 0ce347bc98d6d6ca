"""View-generation benchmark driver (see scripts/bench-views): Tessera's loader vs albumentations
(OpenCV) on the same 256² tiles, same recipe, same number of processes/threads."""
import argparse, json, multiprocessing as mp, os, subprocess, sys, time
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--tessera", required=True)
ap.add_argument("--dataset", required=True)
ap.add_argument("--seconds", type=float, default=3.0)
a = ap.parse_args()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tessera_dataset import TesseraDataset  # noqa: E402
import albumentations as A  # noqa: E402
import cv2  # noqa: E402

cv2.setNumThreads(1)
# The same tiles two ways: decoded up front (albumentations' best case), and as the shard's JPEG bytes,
# decoded inside the timed loop with OpenCV's libjpeg-turbo as a PyTorch Dataset over these shards
# would (Tessera's loader decodes inside its timing too): like for like, the named baseline.
records = [s for s in TesseraDataset(a.dataset, shuffle=False, decode=False)]
jpegs = [np.frombuffer(s["members"]["jpg"], np.uint8) for s in records if "jpg" in s["members"]]
tiles = [cv2.cvtColor(cv2.imdecode(j, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for j in jpegs]
keep = [i for i, t in enumerate(tiles) if t.shape[:2] == (256, 256)]
tiles, jpegs = [tiles[i] for i in keep], [jpegs[i] for i in keep]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def crop_pipeline(size, scale, jitter, blur_p, solarize_p):
    ops = [A.RandomResizedCrop(size=(size, size), scale=scale, ratio=(0.75, 4 / 3), interpolation=cv2.INTER_CUBIC),
           A.HorizontalFlip(p=0.5),
           A.ColorJitter(*jitter, p=0.8),
           A.ToGray(p=0.2)]
    if blur_p > 0:
        ops.append(A.GaussianBlur(sigma_limit=(0.1, 2.0), p=blur_p))
    if solarize_p > 0:
        ops.append(A.Solarize(threshold_range=(0.5, 0.5), p=solarize_p))
    ops.append(A.Normalize(mean=MEAN, std=STD))
    return A.Compose(ops)


def recipes():
    dino_j = (0.4, 0.4, 0.2, 0.1)
    g1 = crop_pipeline(224, (0.4, 1.0), dino_j, 1.0, 0)
    g2 = crop_pipeline(224, (0.4, 1.0), dino_j, 0.1, 0.2)
    loc = crop_pipeline(96, (0.05, 0.4), dino_j, 0.5, 0)
    sim = crop_pipeline(224, (0.08, 1.0), (0.8, 0.8, 0.8, 0.2), 0.5, 0)
    def to_chw(x):
        return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
    return {
        "dino": lambda t: [to_chw(g1(image=t)["image"]), to_chw(g2(image=t)["image"])] + [to_chw(loc(image=t)["image"]) for _ in range(8)],
        "simclr": lambda t: [to_chw(sim(image=t)["image"]) for _ in range(2)],
    }


def worker(args):
    name, seconds, offset, decode = args
    fn = recipes()[name]
    n, t0, c0 = 0, time.time(), time.process_time()
    while time.time() - t0 < seconds:
        k = (offset + n) % len(tiles)
        fn(cv2.cvtColor(cv2.imdecode(jpegs[k], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if decode else tiles[k])
        n += 1
    return n, time.process_time() - c0


def albumentations_rate(name, procs, decode=True):
    with mp.get_context("fork").Pool(procs) as pool:
        t0 = time.time()
        out = pool.map(worker, [(name, a.seconds, i * 1000, decode) for i in range(procs)])
        wall = time.time() - t0
    n = sum(o[0] for o in out)
    return n / a.seconds, n / sum(o[1] for o in out), n


kernels = set()


def tessera_rate(name, workers):
    r = json.loads(subprocess.run([a.tessera, "views", a.dataset, "--recipe", name, "--benchmark", "--workers", str(workers),
                                   "--batch-size", "16", "--min-seconds", str(a.seconds)], check=True, capture_output=True, text=True,
                                  cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout)
    kernels.add(r.get("kernels", "?"))
    return r["samples"] / r["seconds"], r["samples"] / r["cpu_seconds"], r["samples"]


print(f"view generation from {len(tiles)} JPEG tiles of 256² (samples/s wall, samples per CPU-s); both sides decode each tile's JPEG "
      "inside their timing (albumentations with cv2.imdecode); 'pre-decoded' gives albumentations the decoded tiles")
results = {}
for name in ["dino", "simclr"]:
    for w in [1, 2]:
        tw, tc, _ = tessera_rate(name, w)
        aw, ac, _ = albumentations_rate(name, w)
        results[f"{name}_{w}"] = {"tessera_wall": tw, "tessera_cpu": tc, "albumentations_wall": aw, "albumentations_cpu": ac}
        line = (f"  {name:6s} {w} worker(s): tessera {tw:7.1f}/s ({tc:7.1f}/CPU-s)   albumentations {aw:7.1f}/s ({ac:7.1f}/CPU-s)   "
                f"ratio per CPU-s {tc / ac:4.2f}× (target ≥ 3×)")
        if w == 1:
            pw, pc, _ = albumentations_rate(name, 1, decode=False)
            results[f"{name}_1"]["albumentations_predecoded_cpu"] = pc
            line += f"   [pre-decoded: {pc:7.1f}/CPU-s, ratio {tc / pc:4.2f}×]"
        print(line)
    print(f"  {name:6s} scaling 1→2 workers: tessera {results[f'{name}_2']['tessera_wall'] / results[f'{name}_1']['tessera_wall']:.2f}× "
          f"(target ≥ 1.8× on an idle machine), albumentations {results[f'{name}_2']['albumentations_wall'] / results[f'{name}_1']['albumentations_wall']:.2f}×")
print(f"  Tessera view kernel build: {', '.join(sorted(kernels))} (TESSERA_VIEW_KERNELS=baseline|avx2 caps it)")
