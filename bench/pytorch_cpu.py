#!/usr/bin/python3
"""pytorch_cpu.py - clloss bench against PyTorch on the CPU, same shapes, same run.

For each case it runs `clloss bench ... --json-only` (the loss and gradient on
the OpenCL device, data already there) and then PyTorch's forward+backward of
the same loss on the same shape and dtype on the CPU (torch.set_num_threads,
default 2), and prints one table row: clloss ms, GB/s, fraction of the copy
kernel, PyTorch ms, and the speedup (PyTorch ms / clloss ms). Each clloss JSON
line, with the PyTorch fields added (torch_ms, torch_min_ms, speedup,
torch_version, torch_threads), is appended to --out when given.

Not part of CI. Needs Debian's python3-torch (or any PyTorch) for the
comparison; without it the clloss numbers are still printed. With
--torch-device cuda (bench/gpu-check.sh) PyTorch runs on the GPU instead,
timed with torch.cuda.synchronize() around each step, and its memory is
freed after each case so that the next clloss run has the whole card.

  python3 bench/pytorch_cpu.py --clloss build-bench/tools/clloss \
      [--repeat 10] [--warmup 2] [--threads 2] [--out results.json] \
      [--case 'cross_entropy --rows 4096 --classes 32000'] ...

linear_cross_entropy cases ('linear_cross_entropy --rows 2048 --hidden 512
--classes 32000 [--chunk-rows K | --vocab-block B] [--bias]') time PyTorch's
F.linear + F.cross_entropy forward and the gradients of X and W (and b),
and print the fused and unfused clloss times and peak device memory.
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
import warnings

DEFAULT_CASES = [
    "cross_entropy --rows 4096 --classes 32000",
    "cross_entropy --rows 4096 --classes 32000 --dtype bfloat16",
    "mse_loss --numel 16777216",
    "l1_loss --numel 16777216",
]


def parse_case(case):
    """The loss name and the shape/dtype options of a case string."""
    words = shlex.split(case)
    opts = {"loss": words[0], "dtype": "float32", "rows": None,
            "classes": None, "numel": None, "reduction": "mean",
            "no_grad": False, "hidden": None, "bias": False}
    i = 1
    while i < len(words):
        w = words[i]
        key = w.lstrip("-").replace("-", "_")
        if w in ("--no-grad", "--bias"):
            opts[key] = True
            i += 1
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            if key in ("rows", "classes", "numel", "hidden"):
                opts[key] = int(words[i + 1])
            elif key in ("dtype", "reduction"):
                opts[key] = words[i + 1]
            i += 2
        else:
            i += 1
    return opts


def run_clloss(exe, case, repeat, warmup, extra):
    cmd = [exe, "bench"] + shlex.split(case) + [
        "--repeat", str(repeat), "--warmup", str(warmup), "--json-only"
    ] + extra
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write("%s: exit %d\n%s" % (" ".join(cmd), proc.returncode,
                                              proc.stderr))
        return None
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1])


def torch_case(torch, opts, repeat, warmup, device):
    """Median and min ms of forward+backward, or a reason it cannot run."""
    try:
        return torch_timed(torch, opts, repeat, warmup, device)
    except RuntimeError as e:  # no kernel for a dtype, out of memory, ...
        return None, None, str(e).splitlines()[0][:60]
    finally:
        if device != "cpu":
            torch.cuda.empty_cache()


def torch_timed(torch, opts, repeat, warmup, device):
    F = torch.nn.functional
    dtypes = {"float32": torch.float32, "float16": torch.float16,
              "bfloat16": torch.bfloat16, "float64": torch.float64}
    dt = dtypes[opts["dtype"]]
    torch.manual_seed(1)
    dev = {"device": device}
    loss = opts["loss"]
    red = opts["reduction"]
    if loss == "linear_cross_entropy":
        x = torch.zeros(1, **dev)  # the inputs are linear_case's
    elif loss in ("cross_entropy", "nll_loss"):
        n, c = opts["rows"] or 4096, opts["classes"] or 32000
        x = (torch.rand(n, c, **dev) * 10 - 5).to(dt)
        t = torch.randint(0, c, (n,), **dev)
        if loss == "cross_entropy":
            fn = lambda x: F.cross_entropy(x, t, reduction=red)
        else:
            fn = lambda x: F.nll_loss(x, t, reduction=red)
    else:
        n = opts["numel"] or (opts["rows"] or 0) * (opts["classes"] or 0)
        n = n or 1 << 24
        x = (torch.rand(n, **dev) * 10 - 5).to(dt)
        y = (torch.rand(n, **dev) * 10 - 5).to(dt)
        if loss == "binary_cross_entropy_with_logits":
            y = torch.rand(n, **dev).to(dt)
        if loss == "kl_div":
            x = (torch.rand(n, **dev) * -5).to(dt)
            y = (1 - torch.rand(n, **dev)).to(dt)
        f = getattr(F, loss)
        fn = lambda x: f(x, y, reduction=red)
    x.requires_grad_(not opts["no_grad"])
    params = [x]
    if loss == "linear_cross_entropy":
        fn, params = linear_case(torch, opts, dt, dev)

    def step():
        if loss == "linear_cross_entropy":
            out = fn(None)
            return out if opts["no_grad"] else torch.autograd.grad(out, params)
        out = fn(x)
        if opts["no_grad"]:
            return out
        if red == "none":
            (g,) = torch.autograd.grad(out, x, torch.ones_like(out))
        else:
            (g,) = torch.autograd.grad(out, x)
        return g

    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), None


def linear_case(torch, opts, dt, dev):
    """F.linear + F.cross_entropy, clloss bench's data: X in [-1, 1), W and
    b in [-0.2, 0.2); gradients of X, W (and b)."""
    F = torch.nn.functional
    n, h, c = opts["rows"] or 2048, opts["hidden"] or 512, \
        opts["classes"] or 32000
    x = (torch.rand(n, h, **dev) * 2 - 1).to(dt)
    w = ((torch.rand(c, h, **dev) * 2 - 1) * 0.2).to(dt)
    b = ((torch.rand(c, **dev) * 2 - 1) * 0.2).to(dt) if opts["bias"] \
        else None
    t = torch.randint(0, c, (n,), **dev)
    params = [p for p in (x, w, b) if p is not None]
    for p in params:
        p.requires_grad_(not opts["no_grad"])
    red = opts["reduction"]
    return (lambda _: F.cross_entropy(F.linear(x, w, b), t, reduction=red)
            .sum()), params


def linear_row(res, tms, note):
    """A table row of `clloss bench linear_cross_entropy`."""
    mb = lambda v: "n/a" if v is None else "%.1f" % (v / 2**20)
    method = ("block %d" % res["vocab_block"] if res["vocab_block"]
              else "chunk %d" % res["chunk_rows"])
    return "| %s | %s | %s | %s | %s | %s MiB | %s | %s MiB | %s | %s |" % (
        res["loss"], "x".join(str(s) for s in res["shape"]), res["dtype"],
        method, fmt(res["median_ms"]), mb(res["peak_bytes"]),
        fmt(res["unfused_ms"]), mb(res["unfused_peak_bytes"]),
        fmt(tms) if not note else "n/a (%s)" % note,
        fmt(res["speedup"], "%.1fx"))


def fmt(v, f="%.2f"):
    return "n/a" if v is None else f % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clloss", default="build-bench/tools/clloss",
                    help="the clloss binary")
    ap.add_argument("--case", action="append",
                    help="LOSS and clloss bench shape options (repeatable)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2,
                    help="torch.set_num_threads (default 2)")
    ap.add_argument("--torch-device", default="cpu",
                    help="where PyTorch runs: cpu (default) or cuda")
    ap.add_argument("--bench-args", default="",
                    help="more options for clloss bench (e.g. --device 0)")
    ap.add_argument("--suite", default="pytorch_cpu",
                    help="value of the 'suite' field in --out lines")
    ap.add_argument("--out", help="append the JSON lines here")
    args = ap.parse_args()

    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
        print("PyTorch not found (apt-get install python3-torch): clloss "
              "numbers only", file=sys.stderr)
    if torch is not None and args.torch_device != "cpu" and \
            not torch.cuda.is_available():
        print("PyTorch has no CUDA device here: clloss numbers only",
              file=sys.stderr)
        torch = None

    warnings.filterwarnings("ignore")  # kl_div's 'mean', CPU half notes
    cases = args.case or DEFAULT_CASES
    header = ("| loss | shape | dtype | variant | median ms | GB/s | copy GB/s"
              " | ratio | PyTorch ms | speedup |")
    if cases and all(c.startswith("linear_cross_entropy") for c in cases):
        header = ("| loss | N x H x V | dtype | method | median ms | peak |"
                  " unfused ms | unfused peak | PyTorch ms | speedup |")
    print(header)
    print("|" + "---|" * 10)
    failed = 0
    for case in cases:
        opts = parse_case(case)
        res = run_clloss(args.clloss, case, args.repeat, args.warmup,
                         shlex.split(args.bench_args))
        if res is None:
            failed += 1
            continue
        tms = tmin = None
        note = None
        if torch is not None:
            tms, tmin, note = torch_case(torch, opts, args.repeat, args.warmup,
                                         args.torch_device)
        res["suite"] = args.suite
        res["torch_ms"] = tms
        res["torch_min_ms"] = tmin
        res["torch_threads"] = args.threads if torch is not None else None
        res["torch_device"] = args.torch_device if torch is not None else None
        res["torch_version"] = torch.__version__ if torch is not None else None
        res["speedup"] = tms / res["median_ms"] if tms else None
        if note:
            res["torch_note"] = note
        if res["loss"] == "linear_cross_entropy":
            print(linear_row(res, tms, note), flush=True)
        else:
            print_row(res, tms, note)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(res, separators=(",", ":")) + "\n")
    if torch is not None:
        where = ("%d CPU threads" % args.threads if args.torch_device == "cpu"
                 else torch.cuda.get_device_name(0))
        print("PyTorch %s on %s; speedup = PyTorch ms / clloss ms"
              % (torch.__version__, where))
    return 1 if failed else 0


def print_row(res, tms, note):
    """A table row of the other losses' `clloss bench`."""
    shape = "x".join(str(s) for s in res["shape"])
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        res["loss"], shape, res["dtype"], res["variant"],
        fmt(res["median_ms"]), fmt(res["gbps"]), fmt(res["copy_gbps"]),
        fmt(res["ratio"]), fmt(tms) if not note else "n/a (%s)" % note,
        fmt(res["speedup"], "%.1fx")), flush=True)


if __name__ == "__main__":
    sys.exit(main())
