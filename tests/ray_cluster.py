"""Run pytest against a local two-node Ray cluster, optionally removing a node mid-run.

Meant to run inside a network namespace with only loopback up (``unshare -n`` as root, then
``ip link set lo up``): Ray binds to the machine's interface address unless loopback is the only one.
Prints one JSON line: ``{"returncode", "output", "removed", "seconds"}``.

    python tests/ray_cluster.py --cwd SUITE_DIR [--remove-after N --marker FILE] -- PYTEST_ARGS...
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs of each of the two nodes")
    parser.add_argument("--remove-after", type=int, default=0, help="remove the second node after N marker lines")
    parser.add_argument("--marker", default="")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus, "include_dashboard": False})
    second = cluster.add_node(num_cpus=args.cpus)
    cluster.wait_for_nodes()
    removed = None
    try:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "pytest", f"--passk-ray={cluster.address}", *args.pytest_args],
                                cwd=args.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if args.remove_after:
            marker = Path(args.marker)
            while proc.poll() is None:
                lines = marker.read_text().splitlines() if marker.exists() else []
                if len(lines) >= args.remove_after:
                    cluster.remove_node(second, allow_graceful=False)
                    removed = {"after": len(lines), "seconds": round(time.monotonic() - started, 3)}
                    break
                time.sleep(0.02)
        output, _ = proc.communicate(timeout=900)
        seconds = time.monotonic() - started
    finally:
        cluster.shutdown()
    print(json.dumps({"returncode": proc.returncode, "output": output, "removed": removed, "seconds": seconds,
                      "second_node": second.node_id}))


if __name__ == "__main__":
    main()
