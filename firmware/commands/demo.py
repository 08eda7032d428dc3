"""`sitegate demo`: a demonstration gate, or a site of two gates, on this machine."""

from __future__ import annotations

from pathlib import Path

from sitegate.demo import run_demo


def demo(args) -> int:
    if args.site:
        from sitegate.demo.site import run_site_demo

        return run_site_demo(Path(args.dir) if args.dir else None)
    return run_demo(Path(args.dir) if args.dir else None, interactive=args.interactive, channel=args.channel)
