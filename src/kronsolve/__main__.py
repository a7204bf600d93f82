"""Command line: ``kronsolve bench`` (also ``python -m kronsolve bench``) and ``--version``."""

from __future__ import annotations

import argparse
import difflib
import sys


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each sub-command's own (for its usage errors)."""
    from ._bench import DEFAULT_JSON, MEMORY_CAP, WORKLOAD_NAMES
    from ._version import __version__

    p = argparse.ArgumentParser(prog="kronsolve", description="kronsolve command line")
    p.add_argument("--version", action="version", version=f"kronsolve {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser(
        "bench",
        help="benchmark report: kronsolve against np.kron, einsum, SciPy and peers",
        description="Measure this machine's float64 matrix-multiply rate, then time kronsolve "
        "against explicit np.kron, np.einsum, opt_einsum, SciPy and peer libraries over a "
        "range of sizes, printing each row as soon as it is measured (a few minutes; "
        f"--quick for under one). Peak memory stays under {MEMORY_CAP / 1e9:.0f} GB. "
        f"Writes every figure to {DEFAULT_JSON} and a plot of time against size next to it "
        "(kronsolve-bench.png) unless told otherwise.",
    )
    b.add_argument("--quick", action="store_true", help="fewer sizes and samples, under a minute")
    b.add_argument("--workloads", metavar="LIST",
                   help=f"comma-separated subset of: {', '.join(WORKLOAD_NAMES)}")
    b.add_argument("--json", metavar="PATH", default=DEFAULT_JSON,
                   help=f"where to write every figure as JSON (default: {DEFAULT_JSON})")
    b.add_argument("--plot", metavar="PATH",
                   help="where to write the PNG plot (default: next to the JSON file, with the "
                   "suffix .png; needs matplotlib)")
    b.add_argument("--no-plot", action="store_true", help="write no plot")
    b.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr (it is shown only on a terminal)")
    return p, {"bench": b}


def _unrecognized(sub: argparse.ArgumentParser, extra: list[str]) -> str:
    """argparse's message for unknown arguments, with the nearest option when one is close."""
    msg = f"unrecognized arguments: {' '.join(extra)}"
    options = [o for a in sub._actions for o in a.option_strings]
    for arg in extra:
        name = arg.split("=", 1)[0]
        if name in options:  # given before the sub-command, where only --version belongs
            return msg + f" ({name} goes after the sub-command: {sub.prog} {name})"
        close = difflib.get_close_matches(name, options, n=1)
        if arg.startswith("-") and close:
            return msg + f" (did you mean {close[0]}?)"
    return msg


def main(argv: list[str] | None = None) -> int:
    parser, subs = _parser()
    # Unknown arguments are reported by the sub-command's parser, so that the usage
    # printed is the sub-command's own (argparse would print the top-level one).
    args, extra = parser.parse_known_args(argv)
    if extra:
        subs[args.command].error(_unrecognized(subs[args.command], extra))
    if args.command == "bench":
        from ._bench import main_bench

        try:
            return main_bench(args)
        except KeyboardInterrupt:
            print("kronsolve bench: interrupted", file=sys.stderr)
            return 130
    return 2  # pragma: no cover - argparse enforces the sub-command


if __name__ == "__main__":
    sys.exit(main())
