"""`fastddsp cache`: where the cache (features, exported decoders) is, how big, its bound;
`--clear` empties it."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("cache", help="the cache of features and exported decoders: "
                              "location, size, bound; clear it")
    s.add_argument("--clear", action="store_true", help="delete every cached entry")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cache import cache_entries, cache_limit_bytes, clear_cache, default_cache_dir

    folder = default_cache_dir()
    if args.clear:
        count, size = clear_cache(folder)
        print(f"cleared {folder}: {count} entries, {size / 1e6:.1f} MB")
        return 0
    entries = cache_entries(folder)
    size = sum(e.stat().st_size for e in entries)
    print(f"cache (features, exported decoders): {folder}\n"
          f"  {len(entries)} entries, {size / 1e6:.1f} MB of at most "
          f"{cache_limit_bytes() / 1e6:.0f} MB (FASTDDSP_CACHE_MAX_MB; least recently used "
          f"entries go first)\n"
          f"  FASTDDSP_CACHE moves it; --no-cache on a command bypasses it; "
          f"`fastddsp cache --clear` empties it")
    return 0
