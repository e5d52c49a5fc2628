#!/usr/bin/python3
"""plot.py - PNG of cross_entropy GB/s against C, with the copy kernel's line,
from `clloss bench` JSON lines (bench/run-pocl.sh's "sweep" suite); with
--linear, linear_cross_entropy's time and peak device memory against the
chunk size (row chunks; vocabulary blocks as their own points), the
unfused path as horizontal lines.

  bench/plot.py RESULTS.json [-o OUT.png] [--suite sweep] [--title TEXT]
  bench/plot.py --linear RESULTS.json [-o OUT.png] [--title TEXT]

Uses gnuplot (Debian: apt-get install -y gnuplot-nox) when it is on PATH,
else matplotlib (python3-matplotlib). Not part of CI. Lines of one device
and dtype make one pair of curves (loss, copy); C on a log axis; each
point is labelled with the variant and the fraction of the copy's GB/s.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def load(path, suite):
    """{(device, dtype): [(C, N, gbps, copy_gbps, variant)]} sorted by C."""
    series = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("loss") != "cross_entropy" or len(r.get("shape", [])) != 2:
                continue
            if suite and r.get("suite", suite) != suite:
                continue
            key = (r["device"], r["dtype"])
            series.setdefault(key, []).append(
                (r["shape"][1], r["shape"][0], r["gbps"], r.get("copy_gbps"),
                 r.get("variant", "")))
    for v in series.values():
        v.sort()
    return series


def with_gnuplot(series, out, title):
    tmp = tempfile.mkdtemp(prefix="clloss-plot-")
    plots = []
    for i, ((device, dtype), rows) in enumerate(sorted(series.items())):
        dat = os.path.join(tmp, "s%d.dat" % i)
        with open(dat, "w") as f:
            for c, n, g, cg, variant in rows:
                label = variant or "-"
                if cg:
                    label += ",%.2f" % (g / cg)
                f.write("%d %d %.4f %s %s\n" % (c, n, g,
                                               "%.4f" % cg if cg else "NaN",
                                               label))
        name = "%s %s" % (device[:40], dtype)
        plots.append("'%s' using 1:3 with linespoints lw 2 pt 7 "
                     "title 'cross_entropy %s'" % (dat, name.replace("'", "")))
        plots.append("'%s' using 1:4 with linespoints dt 2 lw 2 pt 6 "
                     "title 'copy kernel %s'" % (dat, name.replace("'", "")))
        plots.append("'%s' using 1:3:5 with labels offset 0,1 font ',8' "
                     "notitle" % dat)
    script = "\n".join([
        "set terminal pngcairo noenhanced size 900,560 font 'Sans,10'",
        "set output '%s'" % out,
        "set title '%s'" % title.replace("'", ""),
        "set logscale x",
        "set xlabel 'classes C (N*C about 2^27, float32, loss and gradient)'",
        "set ylabel 'GB/s (least traffic / median time)'",
        "set yrange [0:*]",
        "set grid",
        "set key bottom right",
        "set xtics rotate by 30 right (1000, 4096, 10000, 32000, 50257, "
        "131072)",
        "plot " + ", \\\n  ".join(plots),
    ])
    gp = os.path.join(tmp, "plot.gp")
    with open(gp, "w") as f:
        f.write(script + "\n")
    subprocess.run(["gnuplot", gp], check=True)
    shutil.rmtree(tmp)


def with_matplotlib(series, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5.6))
    for (device, dtype), rows in sorted(series.items()):
        cs = [r[0] for r in rows]
        name = "%s %s" % (device[:40], dtype)
        ax.plot(cs, [r[2] for r in rows], "o-", label="cross_entropy " + name)
        ax.plot(cs, [r[3] or float("nan") for r in rows], "o--",
                label="copy kernel " + name)
        for c, _, g, cg, v in rows:
            label = v + (",%.2f" % (g / cg) if cg else "")
            ax.annotate(label, (c, g), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("classes C (N*C about 2^27, float32, loss and gradient)")
    ax.set_ylabel("GB/s (least traffic / median time)")
    ax.set_ylim(bottom=0)
    ax.grid(True)
    ax.legend(loc="lower right")
    ax.set_title(title)
    fig.savefig(out, dpi=100)


def load_linear(path):
    """Row-chunk and vocabulary-block lines of linear_cross_entropy, and the
    unfused path's median ms and peak bytes (the last line that has them)."""
    rows, blocks, unfused = [], [], None
    with open(path) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("loss") != "linear_cross_entropy":
                continue
            if r.get("unfused_ms"):
                unfused = (r["unfused_ms"], r["unfused_peak_bytes"])
            point = (r["vocab_block"] or r["chunk_rows"], r["median_ms"],
                     r["peak_bytes"] / 2**20)
            (blocks if r["vocab_block"] else rows).append(point)
    return sorted(rows), sorted(blocks), unfused


def plot_linear(path, out, title):
    rows, blocks, unfused = load_linear(path)
    if not rows and not blocks:
        print("plot.py: no linear_cross_entropy lines in %s" % path,
              file=sys.stderr)
        return 1
    if not shutil.which("gnuplot"):
        print("plot.py: --linear needs gnuplot (apt-get install -y "
              "gnuplot-nox)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="clloss-plot-")
    plots = []
    for name, pts in (("row chunks", rows), ("vocabulary blocks", blocks)):
        if not pts:
            continue
        dat = os.path.join(tmp, name.split()[0] + ".dat")
        with open(dat, "w") as f:
            for k, ms, mib in pts:
                f.write("%d %.3f %.3f\n" % (k, ms / 1e3, mib))
        plots.append("'%s' using 1:2 axes x1y1 with linespoints lw 2 pt 7 "
                     "title 'time, %s (s)'" % (dat, name))
        plots.append("'%s' using 1:3 axes x1y2 with linespoints dt 2 lw 2 "
                     "pt 6 title 'peak memory, %s (MiB)'" % (dat, name))
    if unfused:
        plots.append("%.3f axes x1y1 lw 1 lc rgb 'black' title 'time, "
                     "unfused (s)'" % (unfused[0] / 1e3))
        plots.append("%.3f axes x1y2 dt 3 lw 1 lc rgb 'black' title 'peak "
                     "memory, unfused (MiB)'" % (unfused[1] / 2**20))
    script = "\n".join([
        "set terminal pngcairo noenhanced size 900,560 font 'Sans,10'",
        "set output '%s'" % out,
        "set title '%s'" % title.replace("'", ""),
        "set logscale x 2",
        "set logscale y2",
        "set xlabel 'rows per chunk (row chunks) or classes per block "
        "(vocabulary blocks)'",
        "set ylabel 'median time of loss + gradients, s'",
        "set y2label 'peak device memory beyond the arguments, MiB'",
        "set ytics nomirror",
        "set y2tics",
        "set yrange [0:*]",
        "set grid",
        "set key outside bottom center horizontal maxrows 3",
        "plot " + ", \\\n  ".join(plots),
    ])
    gp = os.path.join(tmp, "plot.gp")
    with open(gp, "w") as f:
        f.write(script + "\n")
    subprocess.run(["gnuplot", gp], check=True)
    shutil.rmtree(tmp)
    print("plot: %s" % out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="JSON lines from clloss bench")
    ap.add_argument("-o", "--out", help="PNG path (default RESULTS-sweep.png)")
    ap.add_argument("--suite", default="sweep",
                    help="only lines of this suite ('' for all; lines "
                         "without a suite are always taken)")
    ap.add_argument("--title", default=None)
    ap.add_argument("--linear", action="store_true",
                    help="linear_cross_entropy: time and memory against "
                         "the chunk size")
    args = ap.parse_args()
    if args.linear:
        return plot_linear(
            args.results,
            args.out or os.path.splitext(args.results)[0] + "-linear.png",
            args.title or "clloss linear_cross_entropy, fused vs unfused")
    args.title = args.title or "clloss cross_entropy vs copy kernel"
    out = args.out or os.path.splitext(args.results)[0] + "-sweep.png"
    series = load(args.results, args.suite)
    if not series:
        print("plot.py: no cross_entropy [N, C] lines in %s" % args.results,
              file=sys.stderr)
        return 1
    if shutil.which("gnuplot"):
        with_gnuplot(series, out, args.title)
    else:
        try:
            with_matplotlib(series, out, args.title)
        except ImportError:
            print("plot.py: needs gnuplot (apt-get install -y gnuplot-nox) "
                  "or matplotlib (python3-matplotlib)", file=sys.stderr)
            return 1
    print("plot: %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
