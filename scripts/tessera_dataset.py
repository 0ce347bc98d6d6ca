"""Read a Tessera dataset from Python with no Tessera code: numpy only (Pillow to decode JPEG/PNG,
torch optional).

    from tessera_dataset import TesseraDataset
    ds = TesseraDataset("out/demo", seed=0, epoch=0, rank=0, world_size=1)
    for sample in ds:            # dicts: key, image (H×W×3 uint8), meta (dict), index
        ...
    ds.torch()                   # a torch.utils.data.IterableDataset over the same samples
    TesseraDataset("out/pbc", split="splits/pbc-blood-cells.csv:train,subset=10")   # a split by name

The epoch order, partitioning and padding are the Swift reader's (TesseraShards.EpochOrder),
reproduced exactly: shards permuted by Fisher–Yates with SplitMix64 seeded from (seed, epoch),
then a shuffle buffer; participant q of P = world_size × workers takes positions q, q+P, …
Every record is checked against the CRC32C in the shard index (verify=True, the default).
"""
import json
import mmap
import os

MASK64 = (1 << 64) - 1


class SplitMix64:
    """SplitMix64 (Steele, Lea & Flood 2014), bit-identical to TesseraCore.SplitMix64."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def _mix(a, b):
    g = SplitMix64(a ^ 0x5DEECE66D1CE4E5B)
    g.next()
    g.state ^= (b * 0x9E3779B97F4A7C15) & MASK64
    return g.next()


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def _crc32c_python(data, c=0xFFFFFFFF):
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class _NumpyCRC32C:
    """CRC-32C with numpy, tens of times faster than a Python loop over bytes. CRCs are linear:
    with the register starting at zero, each 4-byte word's CRC is four table lookups, and two
    neighbouring blocks combine as shift(crc(first), len(second)) ^ crc(second), where shift (appending
    zero bytes) is itself four table lookups. Words are combined pairwise, in log2(words) rounds;
    zero bytes prepended change nothing, and the initial 0xFFFFFFFF is XORed into the first 4 bytes."""

    def __init__(self, np):
        self.np = np
        t = [np.array(_CRC_TABLE, dtype=np.uint32)]
        for _ in range(3):  # t[k][b]: byte b followed by k zero bytes
            prev = t[-1]
            t.append((prev >> 8) ^ t[0][prev & 0xFF])
        self.word = np.stack([t[3], t[2], t[1], t[0]])  # indexed by byte position in a word
        self.shifts = []  # shifts[j]: (4, 256) tables appending 4·2^j zero bytes

    def _shift_table(self, j):
        np = self.np
        while len(self.shifts) <= j:
            if not self.shifts:  # 4 zero bytes: the word tables with a zero word
                basis = []
                for i in range(32):
                    c = 1 << i
                    for _ in range(4):
                        c = _CRC_TABLE[c & 0xFF] ^ (c >> 8)
                    basis.append(c)
            else:  # doubling: apply the previous shift twice
                prev = self._basis

                def apply(c):
                    r = 0
                    for i in range(32):
                        if c >> i & 1:
                            r ^= prev[i]
                    return r
                basis = [apply(prev[i]) for i in range(32)]
            self._basis = basis
            v = np.arange(256, dtype=np.uint32)
            table = np.zeros((4, 256), dtype=np.uint32)
            for q in range(4):
                for i in range(8):
                    table[q] ^= np.where((v >> i) & 1, np.uint32(basis[8 * q + i]), np.uint32(0))
            self.shifts.append(table)
        return self.shifts[j]

    def __call__(self, data):
        np = self.np
        n = len(data)
        words = 1
        while 4 * words < n:
            words *= 2
        buf = np.zeros(4 * words, dtype=np.uint8)
        buf[4 * words - n:] = np.frombuffer(data, dtype=np.uint8)
        buf[4 * words - n:4 * words - n + 4] ^= 0xFF
        b = buf.reshape(-1, 4)
        w = self.word
        c = w[0][b[:, 0]] ^ w[1][b[:, 1]] ^ w[2][b[:, 2]] ^ w[3][b[:, 3]]
        j = 0
        while len(c) > 1:
            first = c.reshape(-1, 2).view(np.uint8)[:, :4]  # little-endian bytes of each pair's first CRC
            z = self._shift_table(j)
            c = z[0][first[:, 0]] ^ z[1][first[:, 1]] ^ z[2][first[:, 2]] ^ z[3][first[:, 3]] ^ c[1::2]
            j += 1
        return int(c[0]) ^ 0xFFFFFFFF


def _pick_crc32c():
    try:  # a compiled CRC32C package when installed
        import crc32c as _c
        return _c.crc32c
    except ImportError:
        pass
    try:
        import sys
        import numpy
        if sys.byteorder == "little":
            fast = _NumpyCRC32C(numpy)
            return lambda data: fast(data) if len(data) >= 64 else _crc32c_python(data)
    except ImportError:
        pass
    return _crc32c_python


_crc32c_impl = None


def crc32c(data):
    global _crc32c_impl
    if _crc32c_impl is None:
        _crc32c_impl = _pick_crc32c()
    return _crc32c_impl(data)


class DamagedShard(Exception):
    pass


class TesseraDataset:
    def __init__(self, directory, seed=0, epoch=0, shuffle=True, shuffle_buffer=8192, rank=0, world_size=1,
                 worker=0, workers=1, drop_last=False, slides=None, decode=True, verify=True, split=None):
        self.directory = directory
        self.keys = None
        if split is not None:
            path, _, selector = split.rpartition(":") if ":" in split else (split, "", "all")
            split_slides, self.keys = select_split(path, selector)
            slides = split_slides if slides is None else set(slides) & split_slides
        with open(os.path.join(directory, "manifest.json")) as f:
            self.manifest = json.load(f)
        if self.manifest["status"] != "complete":
            raise ValueError(f"{directory}: dataset is not complete (status {self.manifest['status']})")
        self.shards = []
        for info in self.manifest["shards"]:
            path = os.path.join(directory, "shards", info["name"])
            with open(path[:-4] + ".idx") as f:
                index = json.load(f)
            if len(index["samples"]) != info["samples"]:
                raise DamagedShard(f"{path}: index holds {len(index['samples'])} samples, manifest lists {info['samples']}")
            self.shards.append((path, index["samples"]))
        self.starts = []
        n = 0
        for _, samples in self.shards:
            self.starts.append(n)
            n += len(samples)
        self.count = n
        self.slide_runs = []
        g = 0
        for s in self.manifest["slides"]:
            if s["samples"] > 0:
                self.slide_runs.append((g, s["id"]))
                g += s["samples"]
        self.seed, self.epoch, self.shuffle, self.shuffle_buffer = seed, epoch, shuffle, shuffle_buffer
        self.rank, self.world_size, self.worker, self.workers = rank, world_size, worker, workers
        self.drop_last, self.slides, self.decode, self.verify = drop_last, slides, decode, verify
        self._maps = {}

    # ---- order -------------------------------------------------------------------------------
    def slide_id(self, i):
        lo, hi = 0, len(self.slide_runs) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.slide_runs[mid][0] <= i:
                lo = mid
            else:
                hi = mid - 1
        return self.slide_runs[lo][1]

    def _selection(self):
        out = []
        for s, (_, samples) in enumerate(self.shards):
            ids = range(self.starts[s], self.starts[s] + len(samples))
            if self.slides is not None:
                ids = [i for i in ids if self.slide_id(i) in self.slides]
            if self.keys is not None:
                ids = [i for i in ids if samples[i - self.starts[s]]["key"] in self.keys]
            out.append(list(ids))
        return out

    def _global_stream(self, shards):
        rng = SplitMix64(_mix(self.seed, self.epoch))
        order = list(range(len(shards)))
        if self.shuffle:
            i = len(order) - 1
            while i > 0:
                j = rng.next() % (i + 1)
                order[i], order[j] = order[j], order[i]
                i -= 1
        flat = (g for s in order for g in shards[s])
        if not self.shuffle:
            yield from flat
            return
        buf = []
        for g in flat:
            buf.append(g)
            if len(buf) >= self.shuffle_buffer:
                pick = rng.next() % len(buf)
                buf[pick], buf[-1] = buf[-1], buf[pick]
                yield buf.pop()
        while buf:
            pick = rng.next() % len(buf)
            buf[pick], buf[-1] = buf[-1], buf[pick]
            yield buf.pop()

    def indices(self, position=0):
        """This participant's global sample indices for the epoch, from `position` on."""
        shards = self._selection()
        total = sum(len(s) for s in shards)
        p = self.world_size * self.workers
        q = self.rank * self.workers + self.worker
        limit = total // p if self.drop_last else (total + p - 1) // p
        g = 0
        stream = self._global_stream(shards)
        while g // p < limit:
            if g > 0 and g % total == 0:
                stream = self._global_stream(shards)
            v = next(stream)
            if g % p == q and g // p >= position:
                yield v
            g += 1

    # ---- records -----------------------------------------------------------------------------
    def _map(self, s):
        if s not in self._maps:
            with open(self.shards[s][0], "rb") as f:
                self._maps[s] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return self._maps[s]

    def record(self, i):
        """Global sample i: dict with key, meta, index, and image (decoded) or raw member bytes."""
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= i:
                lo = mid
            else:
                hi = mid - 1
        path, samples = self.shards[lo]
        e = samples[i - self.starts[lo]]
        m = self._map(lo)
        if e["offset"] + e["length"] > len(m):
            raise DamagedShard(f"{path}: sample {e['key']} lies past the end of the file (truncated shard)")
        if self.verify and crc32c(memoryview(m)[e["offset"]:e["offset"] + e["length"]]) != e["crc32c"]:
            raise DamagedShard(f"{path}: sample {e['key']} fails its CRC32C check")
        members = {ext: bytes(m[r[0]:r[0] + r[1]]) for ext, r in e["members"].items()}
        meta = json.loads(members["json"])
        out = {"key": e["key"], "meta": meta, "index": i}
        if self.decode:
            out["image"] = decode_tile(members, meta)
        else:
            out["members"] = members
        return out

    def __iter__(self):
        for i in self.indices():
            yield self.record(i)

    def __len__(self):
        p = self.world_size * self.workers
        total = sum(len(s) for s in self._selection())
        return total // p if self.drop_last else (total + p - 1) // p

    def torch(self):
        """A torch IterableDataset; each DataLoader worker takes its own partition."""
        import torch

        parent = self

        class _Iterable(torch.utils.data.IterableDataset):
            def __iter__(self):
                info = torch.utils.data.get_worker_info()
                ds = parent
                if info is not None:
                    ds = TesseraDataset(parent.directory, parent.seed, parent.epoch, parent.shuffle, parent.shuffle_buffer,
                                        parent.rank, parent.world_size, info.id, info.num_workers, parent.drop_last,
                                        parent.slides, parent.decode, parent.verify)
                    ds.keys = parent.keys
                for s in ds:
                    yield torch.from_numpy(s["image"]).permute(2, 0, 1), s["meta"]

        return _Iterable()


def read_csv_with_comments(path):
    import csv
    with open(path, newline="", encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    comments = {}
    body = 0
    while body < len(lines) and lines[body].startswith("#"):
        k, _, v = lines[body][1:].strip().partition(":")
        comments[k.strip()] = v.strip()
        body += 1
    return comments, list(csv.DictReader(lines[body:]))


def select_split(path, selector="all"):
    """Slide ids (and tile keys, for tile-counted subsets) of a Tessera split file selected by
    comma-joined terms: train, val, test, trainval, all, fold=K, fold!=K, subset=N, label=NAME
    (the same grammar as `tessera read --split FILE:SELECTOR`)."""
    meta, rows = read_csv_with_comments(path)
    if "tessera-split" not in meta:
        raise ValueError(f"{path}: not a Tessera split file")
    tiles = None
    if "subset_unit=tile" in meta.get("rule", ""):
        _, trows = read_csv_with_comments(path[:-4] + ".tiles.csv" if path.endswith(".csv") else path + ".tiles.csv")
        tiles = {r["key"]: (r["slide_id"], int(r["min_subset"])) for r in trows}
    subset = None
    for t in [t.strip() for t in selector.split(",") if t.strip()]:
        if t in ("train", "val", "test"):
            rows = [r for r in rows if r["split"] == t]
        elif t == "trainval":
            rows = [r for r in rows if r["split"] != "test"]
        elif t == "all":
            pass
        elif t.startswith("fold!="):
            rows = [r for r in rows if r["fold"] != "" and int(r["fold"]) != int(t[6:])]
        elif t.startswith("fold="):
            rows = [r for r in rows if r["fold"] != "" and int(r["fold"]) == int(t[5:])]
        elif t.startswith("subset="):
            subset = int(t[7:])
            if tiles is None:
                rows = [r for r in rows if r["min_subset"] != "" and int(r["min_subset"]) <= subset]
        elif t.startswith("label="):
            rows = [r for r in rows if r["label"] == t[6:]]
        else:
            raise ValueError(f"{path}: unknown split selector term {t!r}")
    slides = {r["slide_id"] for r in rows}
    keys = None
    if subset is not None and tiles is not None:
        keys = {k for k, (s, n) in tiles.items() if n <= subset and s in slides}
        slides = {s for k, (s, n) in tiles.items() if k in keys}
    return slides, keys


def decode_tile(members, meta):
    import numpy as np
    if "rgb8" in members:
        n = meta["tile_size"]
        return np.frombuffer(members["rgb8"], dtype=np.uint8).reshape(n, n, 3)
    from io import BytesIO
    from PIL import Image
    data = members.get("jpg") or members.get("png")
    return np.asarray(Image.open(BytesIO(data)).convert("RGB"))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Print a Tessera dataset's epoch order or sample keys.")
    ap.add_argument("directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epoch", type=int, default=0)
    ap.add_argument("--no-shuffle", action="store_true")
    ap.add_argument("--shuffle-buffer", type=int, default=8192)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--world-size", type=int, default=1)
    ap.add_argument("--drop-last", action="store_true")
    ap.add_argument("--slides", default=None, help="comma-separated slide ids")
    ap.add_argument("--indices", action="store_true", help="print global indices instead of keys")
    ap.add_argument("--split", default=None, help="split file and selector, e.g. splits/pbc.csv:train,subset=10")
    a = ap.parse_args()
    ds = TesseraDataset(a.directory, a.seed, a.epoch, not a.no_shuffle, a.shuffle_buffer, a.rank, a.world_size,
                        drop_last=a.drop_last, slides=set(a.slides.split(",")) if a.slides else None, decode=False,
                        split=a.split)
    for i in ds.indices():
        print(i if a.indices else ds.record(i)["key"])
