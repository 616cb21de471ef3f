"""Command line of the TF Serving stand-in (see serving_testbed/__init__.py).

    python -m serving_testbed.model_server --model_base_path=BASE/NAME --model_name=NAME \
        --port=8500 --rest_api_port=8501 [--file_system_poll_wait_seconds=1] \
        [--enable_model_warmup=true] [--max_num_load_retries=5] \
        [--load_retry_interval_micros=60000000]

Prints one JSON line {"grpc_port": P, "rest_port": Q, "version": N} once the latest version
is loaded (ports 0 pick free ones), then serves until killed. Flags are named as
tensorflow_model_server's.
"""

import argparse
import json
import logging
import os
import sys

from serving_testbed.grpc_service import start_grpc_server
from serving_testbed.model_store import ModelStore
from serving_testbed.rest_service import start_rest_server


def _bool(text):
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model_base_path",
        required=True,
        help="BASE/NAME: the directory holding the numeric versions",
    )
    parser.add_argument("--model_name", required=True, help="the NAME clients request")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0 = any free)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0 = any free)")
    parser.add_argument(
        "--enable_model_warmup",
        type=_bool,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests at load",
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="poll the base path for new versions this often (0 = never)",
    )
    parser.add_argument(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="retry a version that failed to load this many times (on later "
        "polls, e.g. once a half-written version is complete)",
    )
    parser.add_argument(
        "--load_retry_interval_micros",
        type=int,
        default=60_000_000,
        help="wait this long before the first retry (doubled after each)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    if not os.path.isdir(args.model_base_path):
        sys.exit(f"model_server: --model_base_path={args.model_base_path}: no such directory")
    store = ModelStore(
        args.model_name,
        args.model_base_path,
        warmup=args.enable_model_warmup,
        max_load_retries=args.max_num_load_retries,
        retry_interval=args.load_retry_interval_micros / 1e6,
    )
    if args.file_system_poll_wait_seconds > 0:
        store.start_polling(args.file_system_poll_wait_seconds)
    grpc_server, grpc_port = start_grpc_server(store, args.port)
    _, rest_port = start_rest_server(store, args.rest_api_port)
    print(
        json.dumps(
            {
                "grpc_port": grpc_port,
                "rest_port": rest_port,
                "version": store.current and store.current.version,
            }
        ),
        flush=True,
    )
    grpc_server.wait_for_termination()


if __name__ == "__main__":
    main()
