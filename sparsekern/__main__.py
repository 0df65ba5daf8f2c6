"""Command line: ``sparsekern bench ...`` / ``sparsekern info`` (also ``python -m sparsekern``)."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="sparsekern", description="sparsekern command line")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    from . import bench

    bp = sub.add_parser("bench", help="time sparsekern against dense numpy and scipy.sparse",
                        description=bench.__doc__.split("\n\n")[0].replace("``", ""))
    bench.add_arguments(bp)
    sub.add_parser("info", help="print sparsekern.info() as JSON")
    args = p.parse_args(argv)
    if args.command == "bench":
        return bench.run(args)
    if args.command == "info":
        import sparsekern

        print(json.dumps(sparsekern.info(), indent=1))
        return 0
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
