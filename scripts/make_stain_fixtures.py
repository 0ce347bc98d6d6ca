#!/usr/bin/env python3
"""Generate stain-normalization reference fixtures for Tessera.

Calls the reference libraries (torchstain numpy backend, staintools + spams,
OpenCV) on fixed inputs and writes PNG outputs plus one expected.json with the
fitted parameters (float64).  Run through scripts/make-stain-fixtures, which
installs the pinned libraries into a private virtualenv.

Usage: make_stain_fixtures.py [--shared DIR] [--out DIR]
"""
import argparse
import functools
import hashlib
import importlib.metadata as md
import json
import os
import platform
import sys
import time
import traceback

import numpy as np
from PIL import Image

import cv2

cv2.setNumThreads(1)

import spams  # noqa: E402
import staintools  # noqa: E402
import staintools.stain_extraction.vahadane_stain_extractor as st_vahadane_mod  # noqa: E402
from staintools.miscellaneous.get_concentrations import get_concentrations as st_get_concentrations  # noqa: E402
from staintools.tissue_masks.luminosity_threshold_tissue_locator import LuminosityThresholdTissueLocator  # noqa: E402
import torchstain  # noqa: E402
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer, NumpyReinhardNormalizer  # noqa: E402

# ---------------------------------------------------------------------------
# Deterministic spams.trainDL settings used for every Vahadane fixture.
# staintools calls spams.trainDL(X, K=2, lambda1=0.1, mode=2, modeD=0,
# posAlpha=True, posD=True, verbose=False) and leaves numThreads=-1 (all
# cores), batchsize=-1 (-> 256*(threads+1)) and iter=-1 (-> run for 1 second
# of wall time), which is not reproducible.  We pin these three.
# ---------------------------------------------------------------------------
VAHADANE_TRAINDL_PINNED = {"numThreads": 1, "batchsize": 512, "iter": 1000}

NCT_PATCHES = ["TUM-AACHEHDV", "NORM-AAAWMSFI", "LYM-AATTSRNN", "BACK-AAQSHYMA"]
NEAR_WHITE_SEED = 20240601
PEN_SPEC = {
    "base": "TUM-AACHEHDV",
    "strokes": [
        {"name": "blue", "ink_rgb": [35, 70, 190], "opacity": 0.75,
         "path": "y = 112 + 48*sin(2*pi*x/224), x = 0..223 (column centre)", "half_width": 3.0},
        {"name": "green", "ink_rgb": [40, 160, 70], "opacity": 0.75,
         "path": "x = 40 + 0.6*y, y = 0..223 (row centre)", "half_width": 2.5},
    ],
    "rule": "pixel (row y, col x) is inked by a stroke when its distance to the stroke's centre "
            "function is <= half_width, measured along the other axis: blue |y - (112+48 sin(2 pi x/224))|, "
            "green |x - (40+0.6 y)|. Blend: out = round(opacity*ink + (1-opacity)*in) in float64, np.rint "
            "(half to even), blue applied first then green on the result.",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def load_rgb(path):
    im = Image.open(path)
    a = np.asarray(im)
    if a.ndim != 3 or a.shape[2] < 3:
        raise ValueError(f"{path}: unexpected shape {a.shape} mode {im.mode}")
    return np.ascontiguousarray(a[..., :3]).astype(np.uint8)


def save_png(arr, path):
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, (arr.dtype, arr.shape)
    Image.fromarray(arr).save(path, optimize=True)


def make_pen(base):
    out = base.astype(np.float64).copy()
    h, w, _ = out.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    blue = np.abs(yy - (112.0 + 48.0 * np.sin(2.0 * np.pi * xx / 224.0))) <= 3.0
    green = np.abs(xx - (40.0 + 0.6 * yy)) <= 2.5
    for mask, ink in ((blue, (35, 70, 190)), (green, (40, 160, 70))):
        ink = np.array(ink, dtype=np.float64)
        out[mask] = np.rint(0.75 * ink + 0.25 * out[mask])
    return out.astype(np.uint8)


def make_near_white():
    rng = np.random.default_rng(NEAR_WHITE_SEED)
    return rng.integers(245, 256, size=(224, 224, 3), dtype=np.uint8)


def f64(x):
    return np.asarray(x, dtype=np.float64).tolist()


def err_record(e):
    return {"raised": True, "type": type(e).__name__, "module": type(e).__module__,
            "message": str(e).strip().splitlines()[0] if str(e).strip() else ""}


# ---------------------------------------------------------------------------
# torchstain Macenko intermediates (replicated step by step and checked
# against the library's private __compute_matrices for equality).
# ---------------------------------------------------------------------------
def ts_macenko_intermediates(img, Io=240, alpha=1, beta=0.15):
    I = img.reshape((-1, 3))
    OD = -np.log((I.astype(float) + 1) / Io)
    keep = ~np.any(OD < beta, axis=1)
    ODhat = OD[keep]
    cov = np.cov(ODhat.T)
    evals, evecs = np.linalg.eigh(cov)
    That = ODhat.dot(evecs[:, 1:3])
    phi = np.arctan2(That[:, 1], That[:, 0])
    minPhi = np.percentile(phi, alpha)
    maxPhi = np.percentile(phi, 100 - alpha)
    return {
        "n_pixels": int(I.shape[0]),
        "n_odhat": int(keep.sum()),
        "cov": f64(cov),
        "eigenvalues_ascending": f64(evals),
        "eigenvectors_columns": f64(evecs),
        "minPhi": float(minPhi),
        "maxPhi": float(maxPhi),
    }


def run_torchstain_macenko(target, inputs, outdir, exp):
    n = NumpyMacenkoNormalizer()
    sec = {"library_call": "torchstain.normalizers.MacenkoNormalizer(backend='numpy'); fit(target) "
                           "[Io=240, alpha=1, beta=0.15]; normalize(I, stains=True) -> (Inorm, H, E)",
           "default_HERef": f64(n.HERef), "default_maxCRef": f64(n.maxCRef)}
    n.fit(target)
    sec["fitted_HERef"] = f64(n.HERef)
    sec["fitted_maxCRef"] = f64(n.maxCRef)
    sec["target_intermediates"] = ts_macenko_intermediates(target)
    compute = n._NumpyMacenkoNormalizer__compute_matrices
    per = {}
    for name, img in inputs.items():
        rec = {}
        try:
            HE, C, maxC = compute(img.reshape((-1, 3)), 240, 1, 0.15)
            rec["HE"] = f64(HE)
            rec["maxC"] = f64(maxC)
            rec["C_row_means"] = f64(C.mean(axis=1))
            rec["intermediates"] = ts_macenko_intermediates(img)
            Inorm, H, E = n.normalize(img)
            p = f"torchstain_macenko_{name}.png"
            save_png(Inorm, os.path.join(outdir, p))
            rec["output"] = p
            if name == "source":
                # H/E unmixed images are not stored as PNG (size budget); their raw pixel hash is
                for arr, tag in ((H, "H"), (E, "E")):
                    rec[f"{tag}_image_raw_sha256"] = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
                    rec[f"{tag}_image_channel_means"] = f64(arr.reshape(-1, 3).mean(axis=0))
            rec["raised"] = False
        except Exception as e:  # record, do not hide
            rec.update(err_record(e))
        per[name] = rec
    sec["inputs"] = per
    exp["torchstain_macenko"] = sec


def run_torchstain_reinhard(target, inputs, outdir, exp):
    n = NumpyReinhardNormalizer()
    n.fit(target)
    sec = {"library_call": "torchstain.normalizers.ReinhardNormalizer(backend='numpy', method=None); "
                           "fit(target); normalize(I)",
           "target_means": f64(n.target_means), "target_stds": f64(n.target_stds),
           "stats_dtype": str(np.asarray(n.target_means).dtype)}
    per = {}
    for name, img in inputs.items():
        rec = {}
        try:
            from torchstain.numpy.utils import rgb2lab, lab_split, get_mean_std
            lab = rgb2lab(img.astype("float32") / 255)
            st = np.array([get_mean_std(x) for x in lab_split(lab)])
            rec["means"] = f64(st[:, 0])
            rec["stds"] = f64(st[:, 1])
            out = n.normalize(img)
            p = f"torchstain_reinhard_{name}.png"
            save_png(out, os.path.join(outdir, p))
            rec["output"] = p
            rec["raised"] = False
        except Exception as e:
            rec.update(err_record(e))
        per[name] = rec
    sec["inputs"] = per
    exp["torchstain_reinhard"] = sec


def run_staintools_reinhard(target, inputs, outdir, exp):
    n = staintools.ReinhardColorNormalizer()
    n.fit(target.copy())
    sec = {"library_call": "staintools.ReinhardColorNormalizer(); fit(target); transform(I) "
                           "(no LuminosityStandardizer)",
           "target_means": [float(np.asarray(m).ravel()[0]) for m in n.target_means],
           "target_stds": [float(np.asarray(s).ravel()[0]) for s in n.target_stds]}
    per = {}
    for name, img in inputs.items():
        rec = {}
        try:
            m, s = n.get_mean_std(img.copy())
            rec["means"] = [float(np.asarray(x).ravel()[0]) for x in m]
            rec["stds"] = [float(np.asarray(x).ravel()[0]) for x in s]
            out = n.transform(img.copy())
            p = f"staintools_reinhard_{name}.png"
            save_png(out, os.path.join(outdir, p))
            rec["output"] = p
            rec["raised"] = False
        except Exception as e:
            rec.update(err_record(e))
        per[name] = rec
    sec["inputs"] = per
    exp["staintools_reinhard"] = sec


def staintools_stain_section(method, target, inputs, outdir, transform_names):
    norm = staintools.StainNormalizer(method=method)
    extractor = norm.extractor
    norm.fit(target.copy())
    sec = {"stain_matrix_target": f64(norm.stain_matrix_target),
           "maxC_target": f64(norm.maxC_target.ravel()),
           "target_tissue_pixels": int(LuminosityThresholdTissueLocator.get_tissue_mask(target.copy()).sum()),
           "target_concentration_means": f64(norm.target_concentrations.mean(axis=0))}
    per = {}
    for name, img in inputs.items():
        rec = {}
        try:
            rec["tissue_pixels"] = int(LuminosityThresholdTissueLocator.get_tissue_mask(img.copy()).sum())
            sm = extractor.get_stain_matrix(img.copy())
            rec["stain_matrix"] = f64(sm)
            C = st_get_concentrations(img.copy(), sm)
            rec["maxC"] = f64(np.percentile(C, 99, axis=0))
            rec["concentration_means"] = f64(C.mean(axis=0))
            if name in transform_names:
                out = norm.transform(img.copy())
                p = f"staintools_{method}_{name}.png"
                save_png(out, os.path.join(outdir, p))
                rec["output"] = p
            rec["raised"] = False
        except Exception as e:
            rec.update(err_record(e))
        per[name] = rec
    sec["inputs"] = per
    return sec


def pinned_trainDL(orig):
    @functools.wraps(orig)
    def wrapper(*args, **kwargs):
        kw = dict(kwargs)
        kw.update(VAHADANE_TRAINDL_PINNED)
        return orig(*args, **kw)
    return wrapper


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--shared", default=os.environ.get("TESSERA_SHARED_DATA", "/work/shared/data"))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "stain"))
    ap.add_argument("--skip-default-vahadane", action="store_true",
                    help="skip the informative run with staintools' own (time-budget) trainDL defaults")
    args = ap.parse_args()
    outdir = os.path.abspath(args.out)
    os.makedirs(outdir, exist_ok=True)

    # ---------------- inputs ----------------
    src_dir = os.path.join(args.shared, "stain-torchstain")
    nct_dir = os.path.join(args.shared, "nct-crc-he-samples")
    inputs = {}
    input_files = {}
    for nm in ("source", "target"):
        a = load_rgb(os.path.join(src_dir, f"{nm}.png"))
        p = f"input_{nm}.png"
        save_png(a, os.path.join(outdir, p))
        inputs[nm] = a
        input_files[nm] = {"file": p, "from": f"stain-torchstain/{nm}.png", "shape_hwc": list(a.shape),
                           "note": "RGBA original, alpha (all 255) dropped, RGB saved losslessly"}
    for nm in NCT_PATCHES:
        a = load_rgb(os.path.join(nct_dir, f"{nm}.tif"))
        p = f"input_{nm}.png"
        save_png(a, os.path.join(outdir, p))
        inputs[nm] = a
        input_files[nm] = {"file": p, "from": f"nct-crc-he-samples/{nm}.tif", "shape_hwc": list(a.shape),
                           "note": "TIFF (PackBits) decoded with Pillow, saved as PNG (lossless)"}
    pen = make_pen(inputs["TUM-AACHEHDV"])
    save_png(pen, os.path.join(outdir, "input_pen.png"))
    inputs["pen"] = pen
    input_files["pen"] = {"file": "input_pen.png", "from": "synthetic: TUM-AACHEHDV + two ink strokes",
                          "shape_hwc": list(pen.shape), "recipe": PEN_SPEC}
    white = make_near_white()
    save_png(white, os.path.join(outdir, "input_near_white.png"))
    inputs["near_white"] = white
    input_files["near_white"] = {
        "file": "input_near_white.png", "shape_hwc": list(white.shape),
        "from": f"synthetic: np.random.default_rng({NEAR_WHITE_SEED}).integers(245, 256, size=(224,224,3), dtype=np.uint8)"}

    target = inputs["target"]
    to_transform = {k: v for k, v in inputs.items() if k != "target"}

    versions = {}
    for pkg in ("torchstain", "staintools", "spams-bin", "spams", "opencv-python-headless", "numpy", "scipy", "pillow", "matplotlib"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    versions["cv2.__version__"] = cv2.__version__
    versions["python"] = platform.python_version()
    versions["platform"] = platform.platform()

    exp = {"schema": "tessera-stain-fixtures/1", "versions": versions, "inputs": input_files,
           "conventions": {"arrays": "nested lists, row-major; images are HxWx3 uint8 RGB",
                           "torchstain HE": "3x2, columns = (H, E) OD unit vectors, rows = R,G,B",
                           "staintools stain_matrix": "2x3, rows = (H, E), columns = R,G,B",
                           "fit_image": "target"}}

    run_torchstain_macenko(target, to_transform, outdir, exp)
    run_torchstain_reinhard(target, to_transform, outdir, exp)
    run_staintools_reinhard(target, to_transform, outdir, exp)

    # staintools Macenko (no randomness)
    sec = staintools_stain_section("macenko", target, to_transform, outdir, transform_names={"source"})
    sec["library_call"] = ("staintools.StainNormalizer(method='macenko'); fit(target); transform(source). "
                           "Extractor: luminosity_threshold=0.8, angular_percentile=99; concentrations: "
                           "spams.lasso(mode=2, lambda1=0.01, pos=True)")
    exp["staintools_macenko"] = sec

    # staintools Vahadane with pinned trainDL
    orig = spams.trainDL
    st_vahadane_mod.spams.trainDL = pinned_trainDL(orig)
    try:
        runs = []
        for rep in range(2):
            t0 = time.time()
            sm_t = staintools.VahadaneStainExtractor.get_stain_matrix(target.copy())
            sm_s = staintools.VahadaneStainExtractor.get_stain_matrix(inputs["source"].copy())
            runs.append({"target": f64(sm_t), "source": f64(sm_s)})
        deterministic = runs[0]["target"] == runs[1]["target"] and runs[0]["source"] == runs[1]["source"]
        sec = staintools_stain_section("vahadane", target, to_transform, outdir, transform_names={"source"})
        # convergence check: iter=3000 against the pinned 1000
        longer = dict(VAHADANE_TRAINDL_PINNED, iter=3000)
        st_vahadane_mod.spams.trainDL = lambda *a, **k: orig(*a, **dict(k, **longer))
        sm_long = staintools.VahadaneStainExtractor.get_stain_matrix(target.copy())
    finally:
        st_vahadane_mod.spams.trainDL = orig
    sec["library_call"] = ("staintools.StainNormalizer(method='vahadane'); fit(target); transform(source), with "
                           "spams.trainDL inside staintools wrapped to force " + json.dumps(VAHADANE_TRAINDL_PINNED) +
                           " on top of staintools' own K=2, lambda1=0.1, mode=2, modeD=0, posAlpha=True, posD=True, "
                           "verbose=False (lambda2 default 1e-9, t0 1e-5, clean=True, rho=1, modeParam=0, batch=False). "
                           "Concentrations: spams.lasso(mode=2, lambda1=0.01, pos=True) (numThreads=-1: per-column, "
                           "thread count does not change results).")
    sec["trainDL_pinned_params"] = VAHADANE_TRAINDL_PINNED
    sec["determinism_runs"] = runs
    sec["deterministic"] = bool(deterministic)
    sec["target_stain_matrix_iter3000"] = f64(sm_long)
    sec["target_iter3000_max_abs_diff"] = float(np.abs(np.array(sm_long) - np.array(sec["stain_matrix_target"])).max())
    if not args.skip_default_vahadane:
        # informative only: what staintools gives with its own defaults (1 s time budget, all cores)
        d = []
        for rep in range(2):
            d.append(f64(staintools.VahadaneStainExtractor.get_stain_matrix(target.copy())))
        sec["staintools_default_trainDL_target_runs_informative"] = d
    exp["staintools_vahadane"] = sec

    # staintools LuminosityStandardizer (separate, explicitly labelled fixture; the normalizers above do NOT use it)
    lum = staintools.LuminosityStandardizer.standardize(inputs["TUM-AACHEHDV"].copy())
    save_png(lum, os.path.join(outdir, "staintools_luminosity_standardized_TUM-AACHEHDV.png"))
    exp["staintools_luminosity_standardizer"] = {
        "library_call": "staintools.LuminosityStandardizer.standardize(TUM, percentile=95)",
        "input": "TUM-AACHEHDV", "output": "staintools_luminosity_standardized_TUM-AACHEHDV.png",
        "L_p95_uint8_lab": float(np.percentile(cv2.cvtColor(inputs["TUM-AACHEHDV"], cv2.COLOR_RGB2LAB)[:, :, 0].astype(float), 95))}

    # scikit-image HED colour deconvolution (Ruifrok & Johnston 2001): the space of the HED jitter
    # of Tellez et al. 2018; tests compare Tessera's StainJitter(space: .hed) with fixed alpha/beta.
    from skimage.color import rgb2hed, hed2rgb
    cases = {"identity": ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]), "jitter": ([1.05, 0.93, 1.02], [0.01, -0.015, 0.005])}
    for name, (a, b) in cases.items():
        hed = rgb2hed(inputs["TUM-AACHEHDV"]) * np.array(a) + np.array(b)
        save_png(np.round(hed2rgb(hed) * 255).astype(np.uint8), os.path.join(outdir, f"skimage_hed_{name}_TUM-AACHEHDV.png"))
    exp["skimage_hed"] = {"library_call": "np.round(skimage.color.hed2rgb(rgb2hed(TUM) * alpha + beta) * 255).astype(uint8)",
                          "cases": {k: {"alpha": a, "beta": b} for k, (a, b) in cases.items()}}

    # OpenCV 8-bit Lab over every input (all 2^24 RGB triples r*65536+g*256+b, and all 2^24 Lab codes
    # in the same layout), as sha256 of the output bytes: tests check Tessera's tables against these.
    v = np.arange(1 << 24, dtype=np.uint32)
    every = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    exp["opencv_lab8_sha256"] = {
        "rgb2lab_all_inputs": hashlib.sha256(np.ascontiguousarray(cv2.cvtColor(every, cv2.COLOR_RGB2LAB)).tobytes()).hexdigest(),
        "lab2rgb_all_inputs": hashlib.sha256(np.ascontiguousarray(cv2.cvtColor(every, cv2.COLOR_LAB2RGB)).tobytes()).hexdigest()}

    # sha256 of all files produced
    files = sorted(f for f in os.listdir(outdir) if f.endswith(".png"))
    exp["sha256"] = {f: sha256(os.path.join(outdir, f)) for f in files}
    # hash of the decoded HxWx3 uint8 pixels (row-major RGB), independent of PNG encoder settings
    exp["raw_pixels_sha256"] = {f: hashlib.sha256(load_rgb(os.path.join(outdir, f)).tobytes()).hexdigest() for f in files}
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"wrote {len(files)} PNGs + expected.json to {outdir}")
    print("vahadane deterministic:", deterministic)


if __name__ == "__main__":
    main()
