#!/usr/bin/python3
"""linear_cross_entropy.py - `clloss run linear_cross_entropy` against
PyTorch's F.linear + F.cross_entropy in float64.

  make                       writes the fixtures in tests/data/linear/: each
                             case's inputs (.npy) and PyTorch's loss, dX, dW
                             and db (float64), and cases.txt, one line per
                             case with its clloss run options; the C suite
                             test_cli_linear_cross_entropy runs the tool on
                             them, so the tests need no PyTorch.
  check --clloss BIN [--cpu] [--device I]
                             runs BIN on every case, computes PyTorch's
                             result again from the same inputs, and compares
                             (exit status 1 on any mismatch); --random N adds
                             N larger random cases (chunk sizes and blocks
                             that do not divide N and V).

Needs Debian's python3-torch: /usr/bin/python3 tests/data/linear_cross_entropy.py
z_loss, softcap and grad_scale are not in PyTorch; they are composed from
torch ops as docs/LOSSES.md defines them (softcap first, z lse^2 added on
valid rows; grad_scale the upstream gradient of backward).
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "linear")
D = torch.float64


def f32(v):
    """clloss takes its options as float32: use the same values here."""
    return float(np.float32(v))


def reference(x, w, b, t, cw, opts):
    """PyTorch's loss and the gradients of x, w, b, all in float64."""
    x = torch.tensor(x, dtype=D, requires_grad=True)
    w = torch.tensor(w, dtype=D, requires_grad=True)
    b = torch.tensor(b, dtype=D, requires_grad=True) if b is not None else None
    tt = torch.tensor(t)
    tt = tt.to(D) if tt.is_floating_point() else tt.long()
    cw = torch.tensor(cw, dtype=D) if cw is not None else None
    one_row = x.dim() == 1
    z = F.linear(x.unsqueeze(0) if one_row else x, w, b)
    if one_row:
        tt = tt.unsqueeze(0)
    red = opts.get("reduction", "mean")
    ignore = int(opts.get("ignore_index", -100))
    eps = f32(opts.get("label_smoothing", 0.0))
    zl = f32(opts.get("z_loss", 0.0))
    cap = f32(opts.get("softcap", 0.0))
    prob = tt.is_floating_point()
    zs = cap * torch.tanh(z / cap) if cap > 0 else z
    if zl == 0:
        loss = F.cross_entropy(zs, tt, weight=cw, ignore_index=ignore,
                               reduction=red, label_smoothing=eps)
    else:
        per = F.cross_entropy(zs, tt, weight=cw, ignore_index=ignore,
                              reduction="none", label_smoothing=eps)
        lse = torch.logsumexp(zs, dim=1)
        valid = torch.ones_like(lse, dtype=torch.bool) if prob else tt != ignore
        per = per + torch.where(valid, zl * lse * lse, torch.zeros_like(lse))
        if red == "none":
            loss = per
        elif red == "sum":
            loss = per.sum()
        elif prob:
            loss = per.sum() / z.shape[0]
        else:
            wt = cw if cw is not None else torch.ones(z.shape[1], dtype=D)
            loss = per.sum() / wt[tt[valid]].sum()
    if one_row and red == "none":
        loss = loss.squeeze(0)
    # grad_scale (not in PyTorch) multiplies every gradient.
    loss.backward(torch.full_like(loss, f32(opts.get("grad_scale", 1.0))))
    return (loss.detach().numpy(), x.grad.numpy(), w.grad.numpy(),
            b.grad.numpy() if b is not None else None)


# name, N (None: one row [H]), H, V, dtype, options (clloss run's), and
# what the case has: bias, class weights, ignored rows, int32 targets,
# probability targets.
CASES = [
    ("mean_bias", 7, 5, 11, "float32", "--chunk-rows 3",
     dict(bias=1)),
    ("sum_weight_ignore", 9, 4, 13, "float32",
     "--reduction sum --vocab-block 4", dict(weights=1, ignore=(2, 5),
                                             int32=1)),
    ("none_smooth", 6, 5, 9, "float32",
     "--reduction none --label-smoothing 0.1 --chunk-rows 2", dict(bias=1)),
    ("mean_smooth_weight", 8, 3, 10, "float32",
     "--label-smoothing 0.2 --vocab-block 3 --chunk-rows 5",
     dict(bias=1, weights=1, ignore=(0,))),
    ("zloss_softcap", 7, 6, 12, "float32",
     "--z-loss 0.01 --softcap 3 --ignore-index 4 --chunk-rows 4",
     dict(bias=1, ignore=(3,), ignore_index=4)),
    ("probs_smooth", 5, 4, 8, "float32",
     "--label-smoothing 0.1 --vocab-block 3", dict(bias=1, prob=1)),
    ("half_none", 6, 8, 10, "float16", "--reduction none --chunk-rows 4",
     dict(bias=1)),
    ("one_row", None, 5, 7, "float32", "--vocab-block 2", dict(bias=0)),
    ("sum_grad_scale", 9, 5, 14, "float32",
     "--reduction sum --grad-scale 0.25 --vocab-block 5 --chunk-rows 4",
     dict(bias=1, weights=1, ignore=(2,))),
]


def make_inputs(rng, n, h, v, dtype, has):
    shape = (h,) if n is None else (n, h)
    rows = 1 if n is None else n
    x = rng.uniform(-1, 1, shape).astype(dtype)
    w = rng.uniform(-0.8, 0.8, (v, h)).astype(dtype)
    b = rng.uniform(-1, 1, (v,)).astype(dtype) if has.get("bias") else None
    if has.get("prob"):
        p = np.exp(rng.uniform(-2, 2, (rows, v)))
        t = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
        if n is None:
            t = t[0]
    else:
        t = rng.integers(0, v, rows).astype(np.int32 if has.get("int32")
                                            else np.int64)
        for i in has.get("ignore", ()):
            t[i] = has.get("ignore_index", -100)
        if n is None:
            t = t.reshape(())
    cw = (rng.uniform(0.25, 2, (v,)).astype(np.float32)
          if has.get("weights") else None)
    return x, w, b, t, cw


def parse_opts(words):
    """The loss options of a clloss run command line, as a dict."""
    o = {}
    for i, wd in enumerate(words):
        if wd.startswith("--") and i + 1 < len(words):
            o[wd[2:].replace("-", "_")] = words[i + 1]
    return o


def make():
    os.makedirs(FIXTURES, exist_ok=True)
    rng = np.random.default_rng(20261126)
    lines = ["# name | clloss run options; written by linear_cross_entropy.py"
             " make with torch %s" % torch.__version__]
    for name, n, h, v, dtype, opts, has in CASES:
        x, w, b, t, cw = make_inputs(rng, n, h, v, dtype, has)
        arrays = {"x": x, "w": w, "b": b, "t": t, "weight": cw}
        loss, dx, dw, db = reference(x, w, b, t, cw, parse_opts(opts.split()))
        arrays.update({"loss": loss, "dx": dx, "dw": dw, "db": db})
        for k, a in arrays.items():
            if a is not None:
                np.save(os.path.join(FIXTURES, "%s.%s.npy" % (name, k)), a)
        lines.append("%s | %s" % (name, opts))
    with open(os.path.join(FIXTURES, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d cases to %s" % (len(CASES), FIXTURES))


def run_clloss(exe, files, opts, extra, out):
    cmd = [exe, "run", "linear_cross_entropy", "--quiet",
           "--input", files["x"], "--linear-weight", files["w"],
           "--target", files["t"],
           "--loss-out", out["loss"], "--grad-out", out["dx"],
           "--grad-weight-out", out["dw"]]
    if "b" in files:
        cmd += ["--linear-bias", files["b"], "--grad-bias-out", out["db"]]
    if "weight" in files:
        cmd += ["--weight", files["weight"]]
    cmd += shlex.split(opts) + extra
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write("%s\n%s" % (" ".join(cmd), proc.stderr))
        return None
    return {k: np.load(p) for k, p in out.items() if os.path.exists(p)}


def compare(name, got, want, half):
    """Relative to the largest expected magnitude of each output."""
    bad = 0
    for k in ("loss", "dx", "dw", "db"):
        if want.get(k) is None:
            continue
        g, e = np.asarray(got[k], dtype=np.float64), np.asarray(want[k])
        if g.shape != e.shape:
            print("%s %s: shape %s, expected %s" % (name, k, g.shape, e.shape))
            bad += 1
            continue
        scale = max(np.max(np.abs(e)), 1e-30)
        tol = (2e-3 if half and k != "loss" else 2e-5) * scale
        err = np.max(np.abs(g - e)) if e.size else 0.0
        status = "ok" if err <= tol else "MISMATCH"
        bad += err > tol
        print("%-20s %-4s max |error| %.3g (scale %.3g) %s" %
              (name, k, err, scale, status))
    return bad


def check(args):
    extra = ["--cpu"] if args.cpu else []
    if args.device is not None:
        extra += ["--device", args.device]
    cases = []
    with open(os.path.join(FIXTURES, "cases.txt")) as f:
        for line in f:
            if line.startswith("#") or "|" not in line:
                continue
            name, opts = (s.strip() for s in line.split("|", 1))
            files = {k: os.path.join(FIXTURES, "%s.%s.npy" % (name, k))
                     for k in ("x", "w", "b", "t", "weight")}
            files = {k: p for k, p in files.items() if os.path.exists(p)}
            cases.append((name, files, opts))
    tmp = tempfile.mkdtemp(prefix="clloss-lce-")
    rng = np.random.default_rng(args.seed)
    for k in range(args.random):
        n, h, v = int(rng.integers(40, 90)), int(rng.integers(16, 48)), \
            int(rng.integers(300, 1200))
        has = dict(bias=1, weights=k % 2, ignore=(1, 7), int32=k % 3 == 0)
        x, w, b, t, cw = make_inputs(rng, n, h, v, "float32", has)
        files = {}
        for key, a in (("x", x), ("w", w), ("b", b), ("t", t),
                       ("weight", cw)):
            if a is not None:
                files[key] = os.path.join(tmp, "r%d.%s.npy" % (k, key))
                np.save(files[key], a)
        opts = ["--chunk-rows %d" % int(rng.integers(5, n)),
                "--vocab-block %d --chunk-rows %d" % (
                    int(rng.integers(17, v // 2)), int(rng.integers(9, n)))][
                        k % 2] + " --label-smoothing 0.05"
        cases.append(("random%d" % k, files, opts))
    bad = 0
    for name, files, opts in cases:
        out = {k: os.path.join(tmp, "%s.out.%s.npy" % (name, k))
               for k in ("loss", "dx", "dw", "db")}
        got = run_clloss(args.clloss, files, opts, extra, out)
        if got is None:
            bad += 1
            continue
        arr = {k: np.load(p) for k, p in files.items()}
        want = dict(zip(("loss", "dx", "dw", "db"), reference(
            arr["x"], arr["w"], arr.get("b"), arr["t"], arr.get("weight"),
            parse_opts(opts.split()))))
        bad += compare(name, got, want, arr["x"].dtype == np.float16)
    print("%d mismatches over %d cases (PyTorch %s, float64)" %
          (bad, len(cases), torch.__version__))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("make")
    c = sub.add_parser("check")
    c.add_argument("--clloss", default="build/tools/clloss")
    c.add_argument("--cpu", action="store_true")
    c.add_argument("--device")
    c.add_argument("--random", type=int, default=0)
    c.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.cmd == "make":
        make()
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
