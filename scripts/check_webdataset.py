"""Interoperability check: the pip package `webdataset` reads Tessera shards unchanged.

    python3 scripts/check_webdataset.py DATASET_DIR OUT_DIR

Reads every shard listed in DATASET_DIR/manifest.json with webdataset (no Tessera code), decodes
each tile with Pillow, and writes OUT_DIR/<key>.rgb (raw H×W×3 bytes) and OUT_DIR/samples.jsonl
(key, shard, metadata). It also reads the same dataset with scripts/tessera_dataset.py and fails if
the two disagree on any key, metadata or pixel. The Swift test suite then compares these files
with the Swift reader's own decode.
"""
import io
import json
import os
import sys

import numpy as np
import webdataset as wds
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tessera_dataset import TesseraDataset  # noqa: E402


def main(directory, out):
    os.makedirs(out, exist_ok=True)
    manifest = json.load(open(os.path.join(directory, "manifest.json")))
    urls = [os.path.join(directory, "shards", s["name"]) for s in manifest["shards"]]
    seen = {}
    with open(os.path.join(out, "samples.jsonl"), "w") as listing:
        for sample in wds.WebDataset(urls, shardshuffle=False):
            key = sample["__key__"]
            meta = json.loads(sample["json"])
            image_ext = next(e for e in ("jpg", "png", "rgb8") if e in sample)
            if image_ext == "rgb8":
                n = meta["tile_size"]
                pixels = np.frombuffer(sample["rgb8"], dtype=np.uint8).reshape(n, n, 3)
            else:
                pixels = np.asarray(Image.open(io.BytesIO(sample[image_ext])).convert("RGB"))
            with open(os.path.join(out, key + ".rgb"), "wb") as f:
                f.write(pixels.tobytes())
            listing.write(json.dumps({"key": key, "meta": meta, "shape": list(pixels.shape)}) + "\n")
            seen[key] = (meta, pixels)
    assert len(seen) == sum(s["samples"] for s in manifest["shards"]), "webdataset saw a different number of samples"

    ds = TesseraDataset(directory, shuffle=False)
    n = 0
    for s in ds:
        meta, pixels = seen[s["key"]]
        assert s["meta"] == meta, f"metadata differs for {s['key']}"
        assert np.array_equal(s["image"], pixels), f"pixels differ for {s['key']}"
        n += 1
    assert n == len(seen), f"tessera_dataset read {n} samples, webdataset {len(seen)}"
    print(f"webdataset and tessera_dataset agree on {n} samples")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
