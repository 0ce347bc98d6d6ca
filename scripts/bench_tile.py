#!/usr/bin/env python3
"""Tiling benchmark for `tessera tile` (driven by scripts/bench-tile).

Two roles:

  bench_tile.py run ...        measures every method as a child process (wall time, user+sys CPU and
                               peak RSS of that child, from os.wait4), checks the output of each,
                               prints the table and writes results.json.
  bench_tile.py worker KIND ... the baselines a Python user would write: tile the level-0 grid with
                               openslide-python (read_region) or pyvips (Region.fetch), encode each
                               tile as JPEG Q90 with pyvips jpegsave_buffer (libvips/libjpeg-turbo,
                               no chroma subsampling, the same encoder settings Tessera uses) and
                               append it to one WebDataset-style tar (KEY.jpg members) with tarfile.
                               Single process, single thread (VIPS_CONCURRENCY=1).
"""

import argparse
import glob
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time

TILE_FMT = "{sid}_{x}_{y}.jpg"


# --------------------------------------------------------------------------------------------- grid

def grid(width, height, tile, stride, rows=None):
    """Top-left corners of every whole tile, row by row (the grid Tessera uses at level 0)."""
    nx = (width - tile) // stride + 1 if width >= tile else 0
    ny = (height - tile) // stride + 1 if height >= tile else 0
    ys = [j * stride for j in range(ny)]
    if rows is not None:
        ys = ys[:rows]
    return nx, ny, [(i * stride, y) for y in ys for i in range(nx)]


def add_member(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------------------------------ workers

def worker(args):
    import pyvips

    t, s = args.tile_size, args.stride
    sid = os.path.splitext(os.path.basename(args.slide))[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    n = 0
    if args.kind == "openslide":
        import openslide

        slide = openslide.OpenSlide(args.slide)
        width, height = slide.level_dimensions[0]
        _, _, coords = grid(width, height, t, s, args.rows)
        with tarfile.open(args.out, "w") as tf:
            for x, y in coords:
                rgba = slide.read_region((x, y), 0, (t, t))          # PIL RGBA
                rgb = rgba.convert("RGB")                              # opaque slide: alpha is 255
                im = pyvips.Image.new_from_memory(rgb.tobytes(), t, t, 3, "uchar")
                add_member(tf, TILE_FMT.format(sid=sid, x=x, y=y),
                           im.jpegsave_buffer(Q=90, subsample_mode="off"))
                n += 1
        slide.close()
    elif args.kind == "pyvips":
        img = pyvips.Image.tiffload(args.slide, page=0, access="random")
        if img.bands == 4:
            img = img.flatten(background=255)
        if img.format != "uchar":
            img = img.cast("uchar")
        region = pyvips.Region.new(img)
        _, _, coords = grid(img.width, img.height, t, s, args.rows)
        with tarfile.open(args.out, "w") as tf:
            for x, y in coords:
                data = region.fetch(x, y, t, t)
                im = pyvips.Image.new_from_memory(data, t, t, img.bands, "uchar")
                add_member(tf, TILE_FMT.format(sid=sid, x=x, y=y),
                           im.jpegsave_buffer(Q=90, subsample_mode="off"))
                n += 1
    else:
        raise SystemExit(f"unknown worker kind {args.kind}")
    print(json.dumps({"tiles": n}))


# ------------------------------------------------------------------------------------- measurement

def measure(cmd, env=None, stdout_path=None):
    """Runs cmd as a child; returns wall s, cpu s (user+sys), user, sys, peak RSS MB, rc, stdout, stderr."""
    out = open(stdout_path, "w+b") if stdout_path else subprocess.DEVNULL
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE)
    # stderr is small for every method; read it while the child runs so it cannot block
    stderr = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    stdout = b""
    if stdout_path:
        out.seek(0)
        stdout = out.read()
        out.close()
    return {
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "peak_rss_mb": ru.ru_maxrss / 1024.0,   # Linux: KiB
        "rc": p.returncode,
        "stdout": stdout.decode(errors="replace"),
        "stderr": stderr.decode(errors="replace"),
    }


def tar_jpegs(paths):
    names = []
    for p in paths:
        with tarfile.open(p, "r") as tf:
            for m in tf:
                if m.isfile() and m.name.endswith(".jpg"):
                    names.append((p, m.name))
    return names


def check_tiles(shards, slide, tile, sample=12):
    """Decodes a spread of tiles from the shards and compares them with the slide's level-0 pixels.

    Returns (tiles checked, max mean-absolute-difference in 0..255). A broken tile raises."""
    import pyvips

    ref = pyvips.Image.tiffload(slide, page=0, access="random")
    if ref.bands == 4:
        ref = ref.flatten(background=255).cast("uchar")
    names = tar_jpegs(shards)
    if not names:
        return 0, None
    step = max(1, len(names) // sample)
    picked = names[::step][:sample]
    worst = 0.0
    for shard, name in picked:
        with tarfile.open(shard, "r") as tf:
            data = tf.extractfile(name).read()
        im = pyvips.Image.new_from_buffer(data, "")
        if im.width != tile or im.height != tile or im.bands != 3:
            raise RuntimeError(f"{shard}:{name} is {im.width}x{im.height}x{im.bands}, expected {tile}x{tile}x3")
        stem = name[:-4]
        x, y = (int(v) for v in stem.rsplit("_", 2)[1:])
        diff = (im.cast("float") - ref.crop(x, y, tile, tile).cast("float")).abs().avg()
        worst = max(worst, diff)
    return len(picked), worst


# ---------------------------------------------------------------------------------------- the run

def fmt(v, nd=1):
    return "—" if v is None else f"{v:,.{nd}f}"


def run(args):
    import pyvips

    work = os.path.abspath(args.workdir)
    outs = os.path.join(work, "out")
    os.makedirs(outs, exist_ok=True)
    slide = os.path.abspath(args.slide)
    t, s = args.tile_size, args.stride
    info = pyvips.Image.tiffload(slide, page=0)
    width, height = info.width, info.height
    nx, ny, _ = grid(width, height, t, s)
    full_tiles = nx * ny
    print(f"slide: {slide}  level 0 {width}x{height}, grid {nx}x{ny} = {full_tiles} whole {t}px tiles", flush=True)
    print("       (derived data: mirrored copies of data/sample/CMU-1-Small-Region.svs, "
          "re-encoded as a JPEG Q90 256px-tiled pyramidal TIFF)", flush=True)

    base_env = dict(os.environ)
    one_thread = dict(base_env, VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1")
    here = os.path.abspath(__file__)
    tessera_common = ["--tile-size", str(t), "--stride", str(s), "--min-tissue", "0", "--tissue", "none",
                      "--format", "jpg", "--quality", "90", "--quiet", "--no-checksum", "--no-thumbnails",
                      "--shard-size", "256MB"]

    methods = []
    for pt in (True, False):
        if pt is False and args.skip_no_pass_through:
            continue
        for w in args.tessera_workers:
            label = f"tessera w{w}" + ("" if pt else " no-pass-through")
            methods.append({"name": label, "kind": "tessera", "workers": w, "pass_through": pt})
    methods += [
        {"name": "openslide-python", "kind": "openslide"},
        {"name": "pyvips Region", "kind": "pyvips"},
        {"name": "vips dzsave (ceiling)", "kind": "dzsave"},
        {"name": "vips decode only (ceiling)", "kind": "decode"},
    ]
    if args.only:
        methods = [m for m in methods if m["kind"] in args.only]

    results = []
    for m in methods:
        out = os.path.join(outs, m["name"].split(" (")[0].replace(" ", "-"))
        shutil.rmtree(out, ignore_errors=True)   # a leftover output dir would make tessera resume
        shards, rows_note, tiles = [], None, None
        env = base_env
        if m["kind"] == "tessera":
            cmd = [args.tessera, "tile", slide, "-o", out, *tessera_common, "--workers", str(m["workers"])]
            if not m["pass_through"]:
                cmd.append("--no-pass-through")
        elif m["kind"] in ("openslide", "pyvips"):
            os.makedirs(out)
            cmd = [sys.executable, here, "worker", m["kind"], "--slide", slide, "--out",
                   os.path.join(out, "shard-000000.tar"), "--tile-size", str(t), "--stride", str(s)]
            if args.rows:
                cmd += ["--rows", str(args.rows)]
                rows_note = f"first {min(args.rows, ny)} of {ny} rows"
            env = one_thread
        elif m["kind"] == "dzsave":
            cmd = ["vips", "dzsave", f"{slide}[page=0]", os.path.join(out, "dz"), "--tile-size", str(t),
                   "--overlap", "0", "--depth", "one", "--suffix", ".jpg[Q=90]"]
            os.makedirs(out)
        else:  # decode only: level 0 decoded and streamed into /dev/null as raw pixels
            cmd = ["vips", "rawsave", f"{slide}[page=0]", "/dev/null"]
        print(f"\n== {m['name']}\n   $ {' '.join(cmd)}", flush=True)
        r = measure(cmd, env=env, stdout_path=os.path.join(work, "last-stdout.txt"))
        if r["rc"] != 0:
            print(r["stderr"][-4000:], file=sys.stderr)
            raise SystemExit(f"bench-tile: {m['name']} failed with exit status {r['rc']}")

        checked, worst = None, None
        if m["kind"] in ("tessera", "openslide", "pyvips"):
            shards = sorted(glob.glob(os.path.join(out, "shards", "*.tar")) if m["kind"] == "tessera"
                            else glob.glob(os.path.join(out, "*.tar")))
            tiles = len(tar_jpegs(shards))
            expect = full_tiles if not (rows_note and m["kind"] != "tessera") else nx * min(args.rows, ny)
            if tiles != expect:
                raise SystemExit(f"bench-tile: {m['name']} wrote {tiles} tiles, expected {expect}")
            checked, worst = check_tiles(shards, slide, t)
            if worst is not None and worst > 8:
                raise SystemExit(f"bench-tile: {m['name']} tiles differ from the slide by {worst:.1f}/255 on average")
        elif m["kind"] == "dzsave":
            tiles = len(glob.glob(os.path.join(out, "dz_files", "0", "*.jpg")))
            rows_note = "dzsave also writes the partial edge tiles"
        else:
            tiles = width * height / float(t * t)
            rows_note = f"tile-equivalents = level-0 pixels / {t}²"
        out_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs) \
            if os.path.isdir(out) else 0
        row = {
            "method": m["name"], "command": cmd, "tiles": tiles,
            "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "user_s": r["user_s"], "sys_s": r["sys_s"],
            "peak_rss_mb": r["peak_rss_mb"],
            "tiles_per_cpu_s": tiles / r["cpu_s"] if r["cpu_s"] > 0 else None,
            "tiles_per_wall_s": tiles / r["wall_s"],
            "output_bytes": out_bytes, "tiles_checked": checked, "max_mean_abs_diff": worst,
            "note": rows_note,
        }
        if m["kind"] == "tessera":
            row.update(workers=m["workers"], pass_through=m["pass_through"])
        results.append(row)
        print(f"   {tiles:,.0f} tiles  wall {r['wall_s']:.2f}s  cpu {r['cpu_s']:.2f}s "
              f"(user {r['user_s']:.2f} sys {r['sys_s']:.2f})  peak RSS {r['peak_rss_mb']:.0f} MB"
              + (f"  checked {checked} tiles, max mean |diff| {worst:.2f}/255" if checked else ""), flush=True)
        if not args.keep_outputs:
            shutil.rmtree(out, ignore_errors=True)

    # ---- table
    print("\nResults (slide %dx%d, %d px tiles, level 0, every whole tile; page cache warm)" % (width, height, t))
    hdr = f"{'method':<34}{'tiles':>9}{'wall s':>9}{'CPU s':>9}{'RSS MB':>9}{'tiles/CPU-s':>13}{'tiles/wall-s':>14}"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(f"{r['method']:<34}{r['tiles']:>9,.0f}{r['wall_s']:>9.2f}{r['cpu_s']:>9.2f}{r['peak_rss_mb']:>9.0f}"
              f"{fmt(r['tiles_per_cpu_s']):>13}{fmt(r['tiles_per_wall_s']):>14}")
    notes = [f"  {r['method']}: {r['note']}" for r in results if r["note"]]
    if notes:
        print("notes:\n" + "\n".join(notes))

    by = {r["method"]: r for r in results}
    ratios = {}
    print("\nRatios (Tessera ÷ baseline; >1 means Tessera is faster)")
    for r in results:
        if not r["method"].startswith("tessera"):
            continue
        for base in ("openslide-python", "pyvips Region"):
            b = by.get(base)
            if not b:
                continue
            cpu = r["tiles_per_cpu_s"] / b["tiles_per_cpu_s"]
            wall = r["tiles_per_wall_s"] / b["tiles_per_wall_s"]
            ratios[f"{r['method']} / {base}"] = {"per_cpu_s": cpu, "per_wall_s": wall}
            print(f"  {r['method']:<28} vs {base:<18}  per CPU-s {cpu:6.2f}x   per wall-s {wall:6.2f}x")
    tess = [r for r in results if r["method"].startswith("tessera")]
    if tess:
        print("\nTessera peak RSS: " + ", ".join(f"{r['method']} {r['peak_rss_mb']:.0f} MB" for r in tess))

    rss_check = None
    if args.rss_slide:
        rss_check = rss_run(args, tessera_common, outs)

    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"},
        "slide": {"path": slide, "width": width, "height": height,
                  "derived_from": "data/sample/CMU-1-Small-Region.svs (mirrored copies, JPEG Q90 pyramidal TIFF)"},
        "tile_size": t, "stride": s, "grid": [nx, ny], "whole_tiles": full_tiles,
        "encoder_for_baselines": "pyvips jpegsave_buffer(Q=90, subsample_mode='off')",
        "results": results, "ratios": ratios, "rss_check": rss_check,
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"\nwrote {args.json}")


def rss_run(args, tessera_common, outs):
    import pyvips

    slide = os.path.abspath(args.rss_slide)
    info = pyvips.Image.tiffload(slide, page=0)
    rows = []
    for pt in (True, False):
        if not pt and args.skip_no_pass_through:
            continue
        out = os.path.join(outs, "rss-check")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [args.tessera, "tile", slide, "-o", out, *tessera_common, "--workers", str(max(args.tessera_workers))]
        if not pt:
            cmd.append("--no-pass-through")
        print(f"\n== RSS check {info.width}x{info.height}{'' if pt else ' no-pass-through'}\n   $ {' '.join(cmd)}",
              flush=True)
        r = measure(cmd)
        if r["rc"] != 0:
            print(r["stderr"][-4000:], file=sys.stderr)
            raise SystemExit(f"bench-tile: RSS check failed with exit status {r['rc']}")
        tiles = len(tar_jpegs(sorted(glob.glob(os.path.join(out, "shards", "*.tar")))))
        row = {"slide": slide, "width": info.width, "height": info.height, "pass_through": pt, "command": cmd,
               "tiles": tiles, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"],
               "under_1gb": r["peak_rss_mb"] < 1024}
        rows.append(row)
        print(f"   Tessera peak RSS tiling {info.width}x{info.height}{'' if pt else ' (no pass-through)'}: "
              f"{r['peak_rss_mb']:.0f} MB ({'under' if row['under_1gb'] else 'OVER'} the 1 GB target); "
              f"{tiles:,} tiles, wall {r['wall_s']:.1f}s, CPU {r['cpu_s']:.1f}s", flush=True)
        if not args.keep_outputs:
            shutil.rmtree(out, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    w = sub.add_parser("worker")
    w.add_argument("kind", choices=["openslide", "pyvips"])
    w.add_argument("--slide", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--tile-size", type=int, default=256)
    w.add_argument("--stride", type=int, default=256)
    w.add_argument("--rows", type=int)

    r = sub.add_parser("run")
    r.add_argument("--slide", required=True)
    r.add_argument("--tessera", required=True)
    r.add_argument("--workdir", required=True)
    r.add_argument("--json", required=True)
    r.add_argument("--tile-size", type=int, default=256)
    r.add_argument("--stride", type=int, default=256)
    r.add_argument("--rows", type=int, help="limit the Python baselines to the first N grid rows")
    r.add_argument("--tessera-workers", type=int, nargs="+", default=[2, 1])
    r.add_argument("--skip-no-pass-through", action="store_true")
    r.add_argument("--only", nargs="+", choices=["tessera", "openslide", "pyvips", "dzsave", "decode"])
    r.add_argument("--rss-slide")
    r.add_argument("--keep-outputs", action="store_true")

    args = ap.parse_args()
    if args.cmd == "worker":
        worker(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
