"""``--passk-plot``: pass@k (expected coverage with k samples) against k, observed and extrapolated.

Left: the observed curve with 95% intervals up to the smallest n, the beta-binomial extrapolation
with its bootstrap band beyond it, and the predicted K; a top axis in tokens when they were counted.
Right (when the suite is small enough to read): each problem's chance of being solved within k
samples (the posterior under the fit; without a fit, the unbiased estimator up to n). matplotlib is imported only here.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_passk import stats

if TYPE_CHECKING:
    from pytest_passk.evaluation import SuiteResult
    from pytest_passk.report.analysis import Analysis

#: Beyond this many problems the per-problem panel is left out: rows would be thinner than a pixel line.
MAX_PROBLEM_ROWS = 400
_OBSERVED = "#0072B2"  # Okabe-Ito blue
_FITTED = "#D55E00"  # Okabe-Ito vermillion


class PlotError(Exception):
    """The plot cannot be drawn (matplotlib missing, unwritable file)."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotError("--passk-plot needs matplotlib: pip install 'pytest-passk[plot]' "
                        "(or pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)  # files only: never a window, even with a display
    import matplotlib.pyplot as plt

    return plt


def write_plot(path: Path, suite: SuiteResult, analysis: Analysis) -> None:
    plt = _pyplot()
    counts = list(analysis.problem_counts.values())
    if not counts:
        raise PlotError(f"--passk-plot={path}: no problem has samples, there is nothing to plot")
    n_min, n_max = min(n for n, _ in counts), max(n for n, _ in counts)
    k_end = max([n_max, *analysis.ks]) if analysis.fit is not None else n_max
    per_problem = len(counts) <= MAX_PROBLEM_ROWS
    style = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
             "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
             "savefig.dpi": 200, "font.family": "DejaVu Sans",
             "svg.fonttype": "none", "pdf.fonttype": 42}  # text stays text: editable, searchable
    with plt.rc_context(style):
        if per_problem:
            fig, (ax, heat) = plt.subplots(1, 2, figsize=(10.0, 4.0), gridspec_kw={"width_ratios": [1.25, 1]},
                                           layout="constrained")
        else:
            fig, ax = plt.subplots(figsize=(5.6, 4.0), layout="constrained")
            heat = None
        _curve_panel(ax, suite, analysis, n_min, k_end)
        if heat is not None:
            _problem_panel(fig, heat, analysis, k_end)
        source = suite.backend if len(suite.backend) <= 110 else suite.backend[:107] + "..."
        fig.suptitle(source, fontsize=8, color="0.35")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, bbox_inches="tight")
        except OSError as exc:
            raise PlotError(f"--passk-plot={path}: cannot write the file ({exc})") from None
        finally:
            plt.close(fig)


def _curve_panel(ax: Any, suite: SuiteResult, analysis: Analysis, n_min: int, k_end: int) -> None:
    fit = analysis.fit
    m = len(analysis.counts)
    share = analysis.share
    # Observed: every k up to the smallest n (the estimator is exact there), intervals at the curve's ks.
    ks_obs = np.unique(np.round(np.geomspace(1, n_min, num=min(n_min, 60))).astype(int))
    obs = [analysis.coverage_at(int(k)).value for k in ks_obs]
    ax.plot(ks_obs, obs, color=_OBSERVED, lw=1.6, label="observed, 95% intervals", zorder=3)
    marks = analysis.curve or []
    if marks:
        kk = np.array([k for k, _ in marks])
        vv = np.array([e.value for _, e in marks])
        lo = np.array([e.low for _, e in marks])
        hi = np.array([e.high for _, e in marks])
        ax.errorbar(kk, vv, yerr=[vv - lo, hi - vv], fmt="o", ms=3.5, color=_OBSERVED, capsize=2, lw=1, zorder=4)
    if fit is not None:
        grid = np.geomspace(1, k_end, 120)
        grid = np.unique(np.concatenate([grid, [float(n_min)]]))
        value, low, high = (share * v for v in fit.band(grid))
        beyond = grid >= n_min
        # The band only where the values are extrapolated: up to n the observed intervals say it.
        ax.fill_between(grid[beyond], low[beyond], high[beyond], color=_FITTED, alpha=0.18, lw=0,
                        label="95% band (bootstrap)")
        ax.plot(grid[~beyond], value[~beyond], color=_FITTED, lw=1.2, ls=(0, (1, 1.5)))
        ax.plot(grid[beyond], value[beyond], color=_FITTED, lw=1.6, ls="--",
                label=f"beta-binomial fit, Beta({fit.alpha:.2g}, {fit.beta:.2g})")
        # The predicted values go in the legend, which finds room for itself: labels next to the
        # points collide as soon as two K are close on the log axis.
        for k, est in analysis.predicted.items():
            ax.errorbar([k], [est.value], yerr=[[est.value - est.low], [est.high - est.value]], fmt="s", ms=4,
                        color=_FITTED, capsize=2.5, lw=1, zorder=4,
                        label=f"pass@{k} = {est.value:.2f} [{est.low:.2f}, {est.high:.2f}]")
        ax.axvline(n_min, color="0.6", lw=0.8, ls=":")
        ax.text(n_min * 1.06, 0.02, f"n = {n_min} drawn", va="bottom", ha="left", fontsize=7, color="0.4",
                transform=ax.get_xaxis_transform())
    else:
        ax.text(0.98, 0.04, f"no extrapolation:\n{_wrap(analysis.no_fit or '', 48)}", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="0.35")
    ax.set_xscale("log")
    ax.set_xlim(0.85, k_end * 1.25)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k  (expected coverage with k samples)")
    ax.set_title(f"{m} problems, {suite.samples} samples")
    ax.grid(True, which="major", color="0.9", lw=0.6)
    # Below the axes: inside, whatever corner it takes, some curve or band runs through it.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False, columnspacing=1.2,
              handlelength=1.8)
    cost = analysis.cost
    if cost.known and cost.tokens_per_sample > 0:
        per_k = cost.tokens_for(1, m) - cost.tokens_for(0, m)
        base = cost.tokens_for(0, m)

        def to_tokens(k: Any) -> Any:
            return base + per_k * np.asarray(k, dtype=float)

        def to_k(t: Any) -> Any:
            return np.maximum((np.asarray(t, dtype=float) - base) / per_k, 1e-9)

        top = ax.secondary_xaxis("top", functions=(to_tokens, to_k))
        top.set_xlabel("tokens spent on the suite (prompt + generated)", fontsize=8)
        top.tick_params(labelsize=7)


def _problem_panel(fig: Any, ax: Any, analysis: Analysis, k_end: int) -> None:
    fit = analysis.fit
    grid = np.unique(np.round(np.geomspace(1, k_end, 80)).astype(int))
    records = analysis.problem_counts
    rows_values = []
    order = []
    for pid, (n, c) in records.items():
        row = []
        for k in grid:
            # Under a fit, the posterior throughout (one smooth row per problem, the values the
            # JSON reports); without one, the unbiased estimator up to n and nothing beyond.
            if fit is not None:
                row.append(fit.problem_pass_at(n, c, float(k)))
            else:
                row.append(stats.pass_at_k(n, c, int(k)) if k <= n else math.nan)
        rows_values.append(row)
        rate = (c + (fit.alpha if fit else 0)) / (n + ((fit.alpha + fit.beta) if fit else 0))
        order.append((rate, rows_values[-1][-1] if not math.isnan(rows_values[-1][-1]) else 0.0))
    idx = sorted(range(len(rows_values)), key=lambda i: order[i], reverse=True)
    data = np.ma.masked_invalid(np.array([rows_values[i] for i in idx], dtype=float))
    edges = np.concatenate([[grid[0] / 1.05], np.sqrt(grid[1:] * grid[:-1]), [grid[-1] * 1.05]])
    mesh = ax.pcolormesh(edges, np.arange(len(idx) + 1), data, cmap="viridis", vmin=0, vmax=1, shading="flat",
                         rasterized=True)
    n_min = min(n for n, _ in records.values())
    ax.axvline(n_min, color="white", lw=1.0, ls="--")
    ax.set_xscale("log")
    ax.set_ylim(len(idx), 0)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel(f"problem ({len(idx)}, easiest first)")
    ids = list(records)
    if len(idx) <= 40:  # few enough to name
        ax.set_yticks(np.arange(len(idx)) + 0.5, [ids[i] for i in idx], fontsize=max(4.5, min(7, 180 / len(idx))))
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    ax.spines[["top", "right"]].set_visible(True)
    ax.set_title("Each problem: P(solved within k samples)")
    bar = fig.colorbar(mesh, ax=ax, fraction=0.05, pad=0.02)
    bar.set_label("probability", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
