#!/usr/bin/python3
"""make_fixtures.py - writes fixtures.txt: small loss cases with PyTorch's
loss and gradient (float64), checked against the CPU reference by
tests/test_fixtures.c.

Run with Debian's python3-torch: /usr/bin/python3 tests/data/make_fixtures.py
z_loss, softcap and the external normalizer are not in PyTorch; they are
composed here from torch ops as docs/LOSSES.md defines them.

Format, one item per line:
  case <name> <op>          op: cross_entropy, nll_loss or pointwise
  param <key> <value>       a number (enums as clloss's integer values)
  array <name> <n> <v>...   input, target, weight, pos_weight, grad_output,
                            loss (expected), grad (expected)
  end
"""
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20261126)
D = torch.float64
RED = {"mean": 0, "sum": 1, "none": 2, "batchmean": 3}
PW = {"mse": 0, "l1": 1, "huber": 2, "smooth_l1": 3, "bce": 4, "kl": 5}
out = []


def f32(v):
    """clloss takes its options as float32: use the same values here."""
    return float(torch.tensor(v, dtype=torch.float32))


def emit_array(name, t):
    v = t.detach().reshape(-1).tolist()
    out.append("array %s %d %s" % (name, len(v), " ".join(repr(float(a)) for a in v)))


def grad_output_for(loss):
    return torch.empty(loss.shape, dtype=D).uniform_(-2, 2)


def run_backward(x, loss):
    g = grad_output_for(loss)
    loss.backward(g)
    return g, x.grad


def cross_entropy(x, t, w, ignore_index, eps, reduction, z, cap, norm, prob):
    """LOSSES.md: softcap first, then PyTorch's cross_entropy, plus z lse^2 on
    valid rows, and the mean divided by the normalizer when it is > 0."""
    xs = cap * torch.tanh(x / cap) if cap > 0 else x
    if z == 0 and norm == 0:
        return F.cross_entropy(xs, t, weight=w, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=eps)
    per = F.cross_entropy(xs, t, weight=w, ignore_index=ignore_index,
                          reduction="none", label_smoothing=eps)
    lse = torch.logsumexp(xs, dim=1)
    valid = torch.ones_like(lse, dtype=torch.bool) if prob else t != ignore_index
    per = per + torch.where(valid, z * lse * lse, torch.zeros_like(lse))
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    if norm > 0:
        den = norm
    elif prob:
        den = x.shape[0]
    else:
        wt = w if w is not None else torch.ones(x.shape[1], dtype=D)
        den = wt[t[valid]].sum()
    return per.sum() / den


def ce_case(name, n, c, reduction="mean", weights=False, ignore=(),
            ignore_index=-100, eps=0.0, z=0.0, cap=0.0, norm=0.0, prob=False,
            x=None, scale=3.0):
    eps, z, cap, norm = f32(eps), f32(z), f32(cap), f32(norm)
    if x is None:
        x = (torch.rand(n, c, dtype=D) * 2 - 1) * scale
    x = x.clone().requires_grad_(True)
    if prob:
        t = torch.softmax(torch.randn(n, c, dtype=D) * 2, dim=1)
    else:
        t = torch.randint(0, c, (n,))
        for i in ignore:
            t[i] = ignore_index
    w = torch.rand(c, dtype=D) * 1.8 + 0.2 if weights else None
    loss = cross_entropy(x, t, w, ignore_index, eps, reduction, z, cap, norm,
                         prob)
    g, grad = run_backward(x, loss)
    out.append("case %s cross_entropy" % name)
    for k, v in (("rows", n), ("classes", c), ("reduction", RED[reduction]),
                 ("ignore_index", ignore_index), ("label_smoothing", eps),
                 ("z_loss", z), ("softcap", cap), ("normalizer", norm),
                 ("prob", int(prob))):
        out.append("param %s %r" % (k, v))
    emit_array("input", x)
    emit_array("target", t.to(D))
    if w is not None:
        emit_array("weight", w)
    emit_array("grad_output", g)
    emit_array("loss", loss)
    emit_array("grad", grad)
    out.append("end")


def nll_case(name, n, c, reduction="mean", weights=False, ignore=(),
             ignore_index=-100):
    x = torch.log_softmax(torch.randn(n, c, dtype=D) * 2, dim=1)
    x.requires_grad_(True)
    t = torch.randint(0, c, (n,))
    for i in ignore:
        t[i] = ignore_index
    w = torch.rand(c, dtype=D) * 1.8 + 0.2 if weights else None
    loss = F.nll_loss(x, t, weight=w, ignore_index=ignore_index,
                      reduction=reduction)
    g, grad = run_backward(x, loss)
    out.append("case %s nll_loss" % name)
    for k, v in (("rows", n), ("classes", c), ("reduction", RED[reduction]),
                 ("ignore_index", ignore_index)):
        out.append("param %s %r" % (k, v))
    emit_array("input", x)
    emit_array("target", t.to(D))
    if w is not None:
        emit_array("weight", w)
    emit_array("grad_output", g)
    emit_array("loss", loss)
    emit_array("grad", grad)
    out.append("end")


def pw_case(name, loss_name, shape, reduction="mean", delta=1.0, beta=1.0,
            log_target=False, weight_shape=None, pos_weight_shape=None):
    delta, beta = f32(delta), f32(beta)
    x = torch.randn(*shape, dtype=D) * 2
    if loss_name == "bce":
        y = torch.rand(*shape, dtype=D)
        y.view(-1)[::5] = 1.0
        y.view(-1)[1::7] = 0.0
    elif loss_name == "kl":
        if log_target:
            y = torch.log_softmax(torch.randn(*shape, dtype=D), dim=-1)
        else:
            y = torch.softmax(torch.randn(*shape, dtype=D), dim=-1)
            y.view(-1)[::4] = 0.0  # kl_div's y = 0 branch
        x = torch.log_softmax(x, dim=-1)
    else:
        y = torch.randn(*shape, dtype=D) * 2
    x.requires_grad_(True)
    kw = {"reduction": reduction}
    w = pw = None
    if loss_name == "mse":
        loss = F.mse_loss(x, y, **kw)
    elif loss_name == "l1":
        loss = F.l1_loss(x, y, **kw)
    elif loss_name == "huber":
        loss = F.huber_loss(x, y, delta=delta, **kw)
    elif loss_name == "smooth_l1":
        loss = F.smooth_l1_loss(x, y, beta=beta, **kw)
    elif loss_name == "bce":
        if weight_shape is not None:
            w = torch.rand(*weight_shape, dtype=D) * 1.8 + 0.2
        if pos_weight_shape is not None:
            pw = torch.rand(*pos_weight_shape, dtype=D) * 2.5 + 0.5
        loss = F.binary_cross_entropy_with_logits(x, y, weight=w,
                                                  pos_weight=pw, **kw)
    else:
        loss = F.kl_div(x, y, log_target=log_target, **kw)
    g, grad = run_backward(x, loss)
    out.append("case %s pointwise" % name)
    count = x.numel()
    for k, v in (("loss", PW[loss_name]), ("count", count),
                 ("reduction", RED[reduction]), ("delta", delta),
                 ("beta", beta), ("log_target", int(log_target)),
                 ("batch", shape[0]),
                 ("weight_count", w.numel() if w is not None else 0),
                 ("pos_weight_count", pw.numel() if pw is not None else 0)):
        out.append("param %s %r" % (k, v))
    emit_array("input", x)
    emit_array("target", y)
    if w is not None:
        emit_array("weight", w)
    if pw is not None:
        emit_array("pos_weight", pw)
    emit_array("grad_output", g)
    emit_array("loss", loss)
    emit_array("grad", grad)
    out.append("end")


# cross_entropy, class-index targets
ce_case("ce_mean", 4, 5)
ce_case("ce_sum", 4, 5, "sum")
ce_case("ce_none", 5, 3, "none")
ce_case("ce_weights_ignore_mean", 6, 4, weights=True, ignore=(1, 4))
ce_case("ce_weights_ignore_sum", 6, 4, "sum", weights=True, ignore=(0,))
ce_case("ce_ignore_index_2_none", 6, 4, "none", ignore=(2, 3), ignore_index=2)
ce_case("ce_ls_weights_ignore_mean", 6, 5, weights=True, ignore=(3,), eps=0.2)
ce_case("ce_ls_none", 4, 6, "none", eps=0.35)
ce_case("ce_ls_one_sum", 3, 4, "sum", eps=1.0)
ce_case("ce_large_logits_ls", 3, 4, eps=0.1, weights=True, scale=1e4)
xinf = torch.tensor([[float("-inf"), 0.5, 1.0, -2.0],
                     [3.0, float("-inf"), float("-inf"), 0.0],
                     [1e4, -1e4, 0.0, 2.0],
                     [float("-inf")] * 4,
                     [float("nan"), 0.0, 1.0, 2.0]], dtype=D)
ce_case("ce_neg_inf_nan_logits", 5, 4, "none", x=xinf)
# probability targets
ce_case("ce_prob_mean", 4, 5, prob=True)
ce_case("ce_prob_weights_ls_sum", 4, 5, "sum", weights=True, eps=0.25,
        prob=True)
ce_case("ce_prob_none", 3, 4, "none", prob=True, eps=0.1)
# extensions composed from torch ops
ce_case("ce_z_loss_mean", 5, 4, weights=True, ignore=(2,), z=0.05)
ce_case("ce_softcap_ls_none", 4, 5, "none", eps=0.1, cap=2.0, scale=6.0)
ce_case("ce_normalizer_mean", 5, 4, ignore=(0, 1), norm=7.0)
ce_case("ce_everything_mean", 6, 5, weights=True, ignore=(4,), eps=0.15,
        z=0.02, cap=3.0, norm=11.0, scale=5.0)
ce_case("ce_prob_z_softcap_mean", 4, 4, prob=True, z=0.1, cap=1.5)
# nll_loss
nll_case("nll_mean", 5, 4)
nll_case("nll_weights_ignore_mean", 6, 5, weights=True, ignore=(2,))
nll_case("nll_weights_sum", 4, 3, "sum", weights=True)
nll_case("nll_ignore_none", 5, 4, "none", ignore=(0, 3), ignore_index=1)
# element-wise losses on a [3, 4] tensor
pw_case("mse_mean", "mse", (3, 4))
pw_case("mse_none", "mse", (3, 4), "none")
pw_case("l1_sum", "l1", (3, 4), "sum")
pw_case("l1_mean", "l1", (2, 5))
pw_case("huber_0.5_mean", "huber", (3, 4), delta=0.5)
pw_case("huber_2_none", "huber", (3, 4), "none", delta=2.0)
pw_case("smooth_l1_0.7_none", "smooth_l1", (3, 4), "none", beta=0.7)
pw_case("smooth_l1_1_sum", "smooth_l1", (3, 4), "sum")
pw_case("smooth_l1_0_mean", "smooth_l1", (3, 4), beta=0.0)
pw_case("bce_mean", "bce", (3, 4))
pw_case("bce_bcast_weights_sum", "bce", (3, 4), "sum", weight_shape=(4,),
        pos_weight_shape=(4,))
pw_case("bce_full_weight_none", "bce", (3, 4), "none", weight_shape=(3, 4))
pw_case("bce_pos_weight_mean", "bce", (2, 6), pos_weight_shape=(6,))
pw_case("kl_batchmean", "kl", (3, 4), "batchmean")
pw_case("kl_sum", "kl", (3, 4), "sum")
pw_case("kl_none", "kl", (2, 5), "none")
pw_case("kl_log_target_mean", "kl", (3, 4), log_target=True)
pw_case("kl_log_target_batchmean", "kl", (4, 3), "batchmean", log_target=True)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures.txt")
with open(path, "w") as f:
    f.write("# Generated by make_fixtures.py with torch %s; do not edit.\n"
            % torch.__version__)
    f.write("\n".join(out) + "\n")
print("wrote %s (%d cases)" % (path, sum(1 for l in out if l.startswith("case"))))
