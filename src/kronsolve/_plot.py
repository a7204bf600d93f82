"""The plot of ``kronsolve bench``: time against size, one panel per workload.

Drawn from the report's plain data (the JSON file's content), so that a saved
report can be drawn again: ``write_plot(json.load(open(path)), "bench.png")``.
This module also names what that data holds: the roles of a report's methods
and the caption naming the machine (``_bench`` imports them from here).
"""

from __future__ import annotations

import textwrap

__all__: list[str] = []

# Roles of a method within its case (a row's "role").
KRONSOLVE = "kronsolve"
ALTERNATIVE = "alternative"  # computes the same result another way: a speed-up candidate
EXPLICIT = "explicit"  # an alternative that forms the explicit dense matrix
PART = "part"  # one step of a composite alternative (np.kron's build, its matvec)
REFERENCE = "reference"  # a bound, not an alternative (np.copyto for the shuffles)


def caption(data: dict) -> str:
    """One line naming the machine, its GEMM rate and the versions (table and plot).

    Examples
    --------
    >>> data = {"machine": {"cpu": "Some CPU", "cores": 2, "memory_bytes": 2**34},
    ...         "versions": {"kronsolve": "0.1.0", "python": "3.11.7", "numpy": "2.4.6",
    ...                      "scipy": "1.17.1", "peers": {"tensorly": "0.10.0"}},
    ...         "gemm_n": 2048, "gemm_rate_gflops": 150.4}
    >>> for part in caption(data).split("; "):
    ...     print(part)
    Some CPU, 2 cores, 16 GiB
    float64 GEMM (A @ B, n = 2048) 150 GFLOP/s
    kronsolve 0.1.0, Python 3.11.7, NumPy 2.4.6, SciPy 1.17.1
    peers: tensorly 0.10.0
    """
    m, v = data["machine"], data["versions"]
    mem = m.get("memory_bytes")
    mem_s = f", {mem / 2**30:.0f} GiB" if mem else ""
    peers = ", ".join(f"{p} {ver}" for p, ver in v.get("peers", {}).items())
    blas = f" ({v['blas']})" if "blas" in v else ""
    return (f"{m['cpu']}, {m['cores']} cores{mem_s}; float64 GEMM (A @ B, n = {data['gemm_n']}) "
            f"{data['gemm_rate_gflops']:.0f} GFLOP/s; kronsolve {v['kronsolve']}, "
            f"Python {v['python']}, NumPy {v.get('numpy')}{blas}, SciPy {v.get('scipy')}"
            + (f"; peers: {peers}" if peers else ""))

_PALETTE = ("#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22")
_KRONSOLVE_COLOR = "#1f4e9c"


def _series(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows with a time, grouped by method in order of appearance (kronsolve first)."""
    out: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["role"] != KRONSOLVE):
        if r["role"] != PART:
            out.setdefault(r["method"], [])
            if r["median_s"]:
                out[r["method"]].append(r)
    return out


def _legend_label(method: str, pts: list[dict], sizes: list[float], cap: float) -> str:
    """The method's name, with where it stops (and why) when it does not cover every size."""
    if not pts:
        return f"{method}: not run (over the {cap / 1e9:.0f} GB memory cap)"
    label = method
    if pts[0]["role"] == EXPLICIT and len(pts) < len(sizes):
        label += f"\n(larger sizes: the matrix would pass the {cap / 1e9:.0f} GB memory cap)"
    if pts[0]["role"] == REFERENCE:
        label += "\n(a bound, not an alternative)"
    if pts[0]["role"] == KRONSOLVE:
        ups = [r["speedup"] for r in pts if r.get("speedup")]
        if ups:
            label += (f"\n(speed-up over the fastest alternative: "
                      f"{min(ups):.2g}x to {max(ups):.2g}x)")
    return label


def write_plot(data: dict, path: str) -> None:
    """Write the PNG: median time per call against size, with the interquartile range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, FixedLocator, NullLocator, ScalarFormatter

    workloads = [w for w in data["workloads"] if any(r["workload"] == w["key"]
                                                       for r in data["rows"])]
    colors: dict[str, str] = {}
    for r in data["rows"]:  # one color per method across every panel
        if r["role"] not in (KRONSOLVE, PART) and r["method"] not in colors:
            colors[r["method"]] = _PALETTE[len(colors) % len(_PALETTE)]
    cols = 2 if len(workloads) > 1 else 1
    nrows = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(8.2 * cols, 3.3 * nrows + 1.0),
                             squeeze=False, layout="constrained")
    for ax, wl in zip(axes.flat, workloads):
        rows = [r for r in data["rows"] if r["workload"] == wl["key"]]
        sizes = sorted({r["x"] for r in rows})
        for method, pts in _series(rows).items():
            role = pts[0]["role"] if pts else EXPLICIT
            pts = sorted(pts, key=lambda r: r["x"])
            xs = [r["x"] for r in pts]
            med = [r["median_s"] for r in pts]
            err = [[m - r["q1_s"] for m, r in zip(med, pts)],
                   [r["q3_s"] - m for m, r in zip(med, pts)]]
            style = {"color": colors.get(method, _KRONSOLVE_COLOR), "marker": "o", "ms": 3.5,
                     "lw": 1.2, "capsize": 2, "elinewidth": 0.8}
            if role == KRONSOLVE:
                style.update(lw=2.4, ms=5, zorder=5)
            elif role == REFERENCE:
                style.update(ls=":", color="0.45", marker="s")
            elif role == EXPLICIT:
                style.update(ls="--")
            label = _legend_label(method, pts, sizes, data["memory_cap_bytes"])
            ax.errorbar(xs, med, yerr=err, label=label, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", labelsize=7.5)
        ax.yaxis.set_major_formatter(EngFormatter(unit="s", places=0))
        ax.set_title(f"{wl['title']}\n{wl['what']}", fontsize=9.5)
        ax.set_xlabel(wl["x_label"], fontsize=8.5)
        ax.set_ylabel("median time per call", fontsize=8.5)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                  frameon=False)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    quick = " (--quick: fewer sizes and samples)" if data.get("quick") else ""
    fig.suptitle(
        f"kronsolve bench{quick}: time per call against problem size, log-log, lower is "
        "faster; bars: the samples' interquartile range\n"
        + "\n".join(textwrap.wrap(caption(data), 170)), fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
