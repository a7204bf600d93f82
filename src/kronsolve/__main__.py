"""Command line: ``kronsolve bench`` (also ``python -m kronsolve bench``)."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    from ._bench import WORKLOAD_NAMES

    p = argparse.ArgumentParser(prog="kronsolve", description="kronsolve command line")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "bench",
        help="benchmark report: kronsolve against np.kron, einsum, SciPy and peers",
        description="Measure this machine's float64 matrix-multiply rate, then time kronsolve "
        "against explicit np.kron, np.einsum, opt_einsum, SciPy and peer libraries.",
    )
    b.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    b.add_argument("--workloads", metavar="LIST",
                   help=f"comma-separated subset of: {', '.join(WORKLOAD_NAMES)}")
    b.add_argument("--json", metavar="PATH", help="write every figure to PATH as JSON")
    b.add_argument("--plot", metavar="PATH", help="write a PNG of speed-up against size")
    b.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
