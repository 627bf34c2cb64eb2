"""`python -m grafana generate|check|preview`: write the dashboards and rules, fail when the
committed copies are stale, or render previews from a live Prometheus."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("generate", help="write dashboards and rules into the chart and k8s/")
    sub.add_parser("check", help="exit 1 when the committed files differ from the code")
    preview = sub.add_parser("preview", help="render each dashboard from a live Prometheus")
    preview.add_argument("--url", required=True, help="Prometheus base URL")
    preview.add_argument("--out", type=Path, default=Path("grafana/previews"))
    preview.add_argument("--minutes", type=float, default=10.0, help="time range to plot")
    args = parser.parse_args(argv)

    from grafana import build

    if args.command == "generate":
        for path in build.write():
            print(path)
        return 0
    if args.command == "check":
        problems = build.stale()
        for p in problems:
            print(f"stale: {p}", file=sys.stderr)
        if problems:
            print("run `make dashboards` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    from grafana.preview import render_all

    for path in render_all(args.url, args.out, args.minutes * 60):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
