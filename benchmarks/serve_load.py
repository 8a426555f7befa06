"""Load on ``specforge serve``: concurrent clients on 127.0.0.1 posting Open Inference Protocol requests.

    python benchmarks/serve_load.py --model runs/mnist-cnn/latest
    python benchmarks/serve_load.py --model model.onnx --clients 8 --seconds 10 --requests 5000 --batch 1

Starts the server itself on a free loopback port, sends JSON infer requests (``--batch`` MNIST test images
each) from ``--clients`` threads, each on one keep-alive connection, and stops after ``--seconds`` or
``--requests`` requests, whichever comes first; then stops the server with SIGTERM.  Prints requests per
second, p50 and p99 latency, the error count, and the server's resident memory before and after.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specforge.data import load_dataset
from specforge.serve.process import start_server, stop_server


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bodies(batch: int, count: int = 64) -> list[bytes]:
    test = load_dataset({"source": "mnist"}, (28, 28, 1), validation="none", base_dir=Path(".")).test
    images = np.asarray(test.images)
    return [
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [batch, 28, 28, 1],
                        "datatype": "FP32",
                        "data": images[i * batch : (i + 1) * batch].reshape(-1).astype(float).tolist(),
                    }
                ]
            }
        ).encode()
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="An exported .onnx file or an exported run of specs/mnist.yaml.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="Stop after this long.")
    parser.add_argument("--requests", type=int, default=5000, help="Stop after this many requests.")
    parser.add_argument("--batch", type=int, default=1, help="Images per request.")
    args = parser.parse_args()

    payloads = bodies(args.batch)
    process, url = start_server(args.model, "--name", "model")
    port = int(url.rsplit(":", 1)[1])
    before = resident_mib(process.pid)
    tickets = itertools.count()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline and (ticket := next(tickets)) < args.requests:
            start = time.perf_counter()
            try:
                connection.request(
                    "POST",
                    "/v2/models/model/infer",
                    payloads[ticket % len(payloads)],
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                response.read()
                failed = response.status != 200
            except (OSError, http.client.HTTPException):
                failed = True
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                latencies.append(time.perf_counter() - start)
                errors += failed
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    after = resident_mib(process.pid)
    stop_server(process)

    milliseconds = np.array(latencies) * 1000
    print(f"{len(latencies)} requests of {args.batch} image(s) from {args.clients} clients in {elapsed:.1f} s")
    print(f"requests/s: {len(latencies) / elapsed:.0f}   images/s: {args.batch * len(latencies) / elapsed:.0f}")
    print(f"latency p50: {np.percentile(milliseconds, 50):.1f} ms   p99: {np.percentile(milliseconds, 99):.1f} ms")
    print(f"errors: {errors}")
    print(f"server memory (RSS): {before:.0f} MiB before, {after:.0f} MiB after")


if __name__ == "__main__":
    main()
