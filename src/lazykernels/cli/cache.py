"""``lazykernels cache info`` and ``lazykernels cache clean``: the on-disk kernel cache."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from ._common import CACHE_ENV_HELP, human_bytes, plural

_LIBRARY = re.compile(r"^[0-9a-f]{64}\.so$")


def register(subparsers: Any) -> None:
    """Add the ``cache`` command group (``info``, ``clean``) to the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "cache",
        help="show or empty the compiled-kernel cache",
        description="Inspect or empty the on-disk cache of compiled kernels.",
        epilog=CACHE_ENV_HELP,
    )
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    info = actions.add_parser(
        "info",
        help="print the cache directory, the number of kernels and their size",
        description="Print the cache directory, the number of compiled kernels and the "
        "total size of the cache files.",
        epilog=CACHE_ENV_HELP,
    )
    info.add_argument("--list", action="store_true", help="also list every cached kernel")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(run=run_info)
    clean = actions.add_parser(
        "clean",
        help="delete every cached kernel (asks nothing) and print what was removed",
        description="Delete every compiled kernel, source, metadata file and compiler probe "
        "from the cache directory, without asking; other files there are left alone.",
        epilog=CACHE_ENV_HELP,
    )
    clean.set_defaults(run=run_clean)


def kernel_entries(directory: Path) -> list[dict[str, Any]]:
    """One record per cached library: key, size, its JSON metadata's name and date, and
    ``problem``: why it would not be loaded (owner, mode, sha256; see jit/trust.py), or None."""
    from ..jit.cache import library_problem, read_metadata  # import cost

    entries = []
    for library in sorted(directory.iterdir()):
        if not _LIBRARY.match(library.name):
            continue
        key = library.name[:-3]
        meta = read_metadata(key, directory) or {}
        try:
            size = library.stat().st_size
        except FileNotFoundError:  # removed by a concurrent clean
            continue
        entries.append(
            {
                "key": key,
                "name": str(meta.get("name", "?")),
                "built_at": str(meta.get("built_at", "?")),
                "bytes": size,
                "problem": library_problem(directory, key),
            }
        )
    return entries


def run_info(args: argparse.Namespace) -> int:
    """Print the cache summary (and the kernels with ``--list``)."""
    from ..jit import cache_info  # import cost

    info = cache_info()
    entries = kernel_entries(Path(info["path"])) if args.list else None
    if args.json:
        payload = dict(info)
        if entries is not None:
            payload["kernels"] = entries
        print(json.dumps(payload, indent=2))
        return 0
    print(f"cache directory: {info['path']}")
    print(f"kernels:         {info['num_kernels']}")
    print(f"total size:      {human_bytes(info['total_bytes'])}")
    for entry in entries or ():
        print(
            f"  {entry['key'][:16]}  {entry['name']:<20} {human_bytes(entry['bytes']):>10}  "
            f"built {entry['built_at']}"
            + (
                f"  NOT TRUSTED, rebuilt on next use: {entry['problem']}"
                if entry["problem"]
                else ""
            )
        )
    return 0


def run_clean(args: argparse.Namespace) -> int:
    """Empty the cache and print how many kernels and bytes were removed."""
    from ..jit import cache_info, clean_cache  # import cost

    before = cache_info()
    clean_cache()
    after = cache_info()
    kernels = before["num_kernels"] - after["num_kernels"]
    freed = max(0, before["total_bytes"] - after["total_bytes"])
    print(f"removed {plural(kernels, 'kernel')} ({human_bytes(freed)}) from {before['path']}")
    if after["num_kernels"]:
        # Another process built kernels while we cleaned: say so rather than hide it.
        print(f"{plural(after['num_kernels'], 'kernel')} built by another process meanwhile")
    return 0
