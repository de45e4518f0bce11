"""omd-server command line: serve, keys, simulate, prune, openapi, bench."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import load, to_env


def _cfg(args):
    return load(args.config)


def cmd_serve(args) -> int:
    import uvicorn

    cfg = _cfg(args)
    host = args.host or cfg.host
    port = args.port or cfg.port
    workers = args.workers or cfg.workers
    # workers are separate processes that re-read configuration from the environment
    os.environ.update(to_env(cfg))
    from .storage import open_storage

    open_storage(cfg).close()  # create the schema once, before workers race to do it
    uvicorn.run("omd_server.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level=cfg.log_level.lower(), access_log=args.access_log)
    return 0


def cmd_keys(args) -> int:
    from . import keys
    from .storage import open_storage

    st = open_storage(_cfg(args))
    try:
        if args.action == "add":
            try:
                keys.check_meter_id(args.meter_id)
            except keys.KeyRefused as exc:
                print(exc, file=sys.stderr)
                return 2
            try:
                key = keys.issue(st, args.meter_id, rotate=args.rotate)
            except keys.KeyRefused as exc:
                print(exc, file=sys.stderr)
                return 1
            # printed once: the server keeps it to verify signatures, the meter must be given it
            print(key)
        elif args.action == "list":
            for m in st.list_meters():
                print(f"{m['meter_id']}\t{'key' if m['has_key'] else 'no key'}\tlast_seq={m['last_seq']}")
        elif args.action == "remove":
            st.set_key(args.meter_id, None)
            print(f"key of {args.meter_id} removed; its signed readings are now refused")
    finally:
        st.close()
    return 0


def cmd_prune(args) -> int:
    from . import images
    from .storage import open_storage

    cfg = _cfg(args)
    st = open_storage(cfg)
    gone = images.prune(cfg, st)
    print(f"pruned {len(gone)} image(s)")
    return 0


def cmd_openapi(args) -> int:
    from .openapi import render

    text = render()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_simulate(args) -> int:
    from . import simulate

    return simulate.main_from_args(args)


def cmd_bench(args) -> int:
    from . import bench

    return bench.main(args.rest)


def cmd_verify(args) -> int:
    from . import verify

    return verify.main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omd-server", description=__doc__)
    p.add_argument("--config", "-c", help="TOML configuration file (default: $OMD_CONFIG)")
    # --config is accepted before or after the subcommand
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", parents=[common], help="run the HTTP server")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int)
    s.add_argument("--access-log", action="store_true")
    s.set_defaults(func=cmd_serve)

    k = sub.add_parser("keys", parents=[common], help="provision meter keys")
    ksub = k.add_subparsers(dest="action", required=True)
    ka = ksub.add_parser("add", parents=[common], help="create a key for METER_ID and print it once")
    ka.add_argument("meter_id")
    ka.add_argument("--rotate", action="store_true", help="replace an existing key")
    ksub.add_parser("list", parents=[common])
    kr = ksub.add_parser("remove", parents=[common])
    kr.add_argument("meter_id")
    k.set_defaults(func=cmd_keys)

    pr = sub.add_parser("prune", parents=[common], help="apply the image retention policy now")
    pr.set_defaults(func=cmd_prune)

    o = sub.add_parser("openapi", help="write the OpenAPI document (deterministic)")
    o.add_argument("--out", help="file to write (default stdout)")
    o.set_defaults(func=cmd_openapi)

    from . import simulate

    sm = sub.add_parser("simulate", parents=[common], help="play simulated meters against a server")
    simulate.add_arguments(sm)
    sm.set_defaults(func=cmd_simulate)

    from . import verify

    v = sub.add_parser("verify", parents=[common], help="check a certified interval against the chain "
                       "(batch, Merkle root, device signature, on-chain record)")
    verify.add_arguments(v)
    v.set_defaults(func=cmd_verify)

    b = sub.add_parser("bench", help="benchmark (same as python -m omd_server.bench)")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
