"""The `capcse` command line: thin argument parsing that calls the library.

Every module in this package except this one is a sub-command. A sub-command module defines
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code). Heavy imports (torch, transformers) belong inside
``func`` so that ``capcse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from capcse import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capcse", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"capcse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    package = sys.modules[__name__]
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from capcse.errors import CapcseError

    try:
        return int(args.func(args) or 0)
    except CapcseError as exc:  # user-facing errors: one clear message, no traceback
        print(f"capcse {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
