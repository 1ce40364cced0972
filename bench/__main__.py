"""Command line: ``python -m bench {maskbench,testsuite,generate,report} [options]`` (see bench/README.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    import faulthandler  # noqa: PLC0415
    import signal  # noqa: PLC0415
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a long run is
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    from bench import maskbench  # noqa: PLC0415
    maskbench.add_arguments(commands.add_parser("maskbench", help="MaskBench token-by-token mask check"))

    from bench import testsuite  # noqa: PLC0415
    testsuite.add_arguments(commands.add_parser("testsuite", help="the JSON Schema Test Suite"))

    from bench import generate  # noqa: PLC0415
    generate.add_arguments(commands.add_parser("generate", help="JSONSchemaBench end-to-end generation"))

    report = commands.add_parser("report", help="rebuild tables and plots from result directories")
    report.add_argument("dirs", nargs="+", type=Path)
    report.add_argument("--out", type=Path, default=None, help="where to write (default: the last DIR)")
    report.add_argument("--no-plots", action="store_true")
    report.add_argument("--common-only", action="store_true",
                        help="MaskBench: only schemas every engine has a result for (partial runs)")

    args = parser.parse_args(argv)
    if args.command == "maskbench":
        maskbench.run_maskbench(args)
    elif args.command == "testsuite":
        testsuite.run_testsuite(args)
    elif args.command == "generate":
        generate.run_generate(args)
    else:
        from bench.report import report_command  # noqa: PLC0415
        report_command(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
