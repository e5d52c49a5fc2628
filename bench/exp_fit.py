#!/usr/bin/python3
"""Coefficients of exp_nonpos (kernels/common.cl) and its error.

exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2],
exp(r) = 1 + r + r^2 q(r) with q of degree 4. q is fitted to minimise the
largest relative error of exp(r) on the interval (least squares reweighted
towards the minimax solution, Lawson's algorithm). The evaluation is then
simulated in float32, as the kernel does it (without fused multiply-adds,
so slightly pessimistic), over [-87.3, 0] against exp in float64, and the
largest error is printed in ulp of the correctly rounded result.

Usage: /usr/bin/python3 bench/exp_fit.py      (numpy only)
"""
import numpy as np

LN2_HI = np.float32(0.693145751953125)  # 16 significant bits: n * LN2_HI exact
LN2_LO = np.float32(np.log(2) - 0.693145751953125)
SHIFTER = np.float32(1.5 * 2**23)


def fit(degree=4, iterations=200):
    h = np.log(2) / 2
    r = np.linspace(-h, h, 200001)
    r = r[np.abs(r) > 1e-9]
    f = (np.exp(r) - 1 - r) / r**2
    w = r**2 / np.exp(r)  # error of q, relative to exp(r)
    a = np.vstack([r**k for k in range(degree + 1)]).T
    weights = np.ones_like(r)
    for _ in range(iterations):
        sw = np.sqrt(weights) * w
        c, *_ = np.linalg.lstsq(a * sw[:, None], f * sw, rcond=None)
        err = np.abs((a @ c - f) * w)
        weights = weights * err
        weights /= weights.sum()
    return [np.float32(v) for v in c], err.max()


def exp_nonpos(x, c):
    x = x.astype(np.float32)
    t = (x * np.float32(1.44269504) + SHIFTER).astype(np.float32)
    n = (t - SHIFTER).astype(np.float32)
    r = (x - n * LN2_HI).astype(np.float32)
    r = (r - n * LN2_LO).astype(np.float32)
    q = c[4]
    for k in (3, 2, 1, 0):
        q = (q * r + c[k]).astype(np.float32)
    p = (r * r * q + r).astype(np.float32) + np.float32(1)
    bits = (t.view(np.int32) - np.int32(0x4B400000 - 127)) << 23
    scale = bits.astype(np.int32).view(np.float32)
    return np.where(x < np.float32(-87.33), np.float32(0), p * scale)


def main():
    c, rel = fit()
    print("q coefficients (r^0 .. r^4):", ", ".join("%.8e" % v for v in c))
    print("fit: largest relative error of exp(r) %.3g" % rel)
    x = np.linspace(-87.33, 0, 4000001).astype(np.float32)
    want = np.exp(x.astype(np.float64))
    got = exp_nonpos(x, c).astype(np.float64)
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    err = np.abs(got - want) / ulp
    print("float32 evaluation on [-87.33, 0]: max %.2f ulp, mean %.2f ulp"
          % (err.max(), err.mean()))


if __name__ == "__main__":
    main()
