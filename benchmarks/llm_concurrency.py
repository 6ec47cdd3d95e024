"""`describe --llm-concurrency N` against a local OpenAI-compatible server whose every reply takes a fixed latency.

An endpoint's throughput is bound by its latency per request, not by this machine: with N requests in flight a
dataset is described about N times faster until the server saturates. The server here (127.0.0.1, a thread per
request) sleeps `--latency` seconds per request and answers a fixed paragraph / three-level JSON, so the ratio
measures fusekit's concurrency alone. Both runs go through `Pipeline.describe_many` in groups of N pairs, what
`fusekit describe --manifest ... --llm-concurrency N` does, with no cache; their documents must be identical.

    .venv/bin/python benchmarks/llm_concurrency.py [--pairs 8] [--latency 0.5] [--n 4]

Prints seconds per run, the ratio N=1 / N=n (bar: >= 3 at n = 4) and the most requests the server saw at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

LEVELS = {"detail": "Fine texture along the road edges.", "structure": "A road crosses the frame from left to right.",
          "semantic": "A night street with a warm pedestrian."}


class LatencyServer:
    def __init__(self, latency: float):
        self.latency, self.in_flight, self.most = latency, 0, 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.in_flight += 1
                    outer.most = max(outer.most, outer.in_flight)
                time.sleep(outer.latency)
                asked = body["messages"][-1]["content"]
                content = json.dumps(LEVELS) if "JSON object" in asked else "A warm figure stands on the dark road ahead."
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                with outer.lock:
                    outer.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def run(pipeline, loaded, n: int) -> tuple[float, list]:
    started = time.perf_counter()
    documents = []
    for start in range(0, len(loaded), n):
        documents += pipeline.describe_many(loaded[start:start + n], "ivf")
    return time.perf_counter() - started, documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()

    from fusekit.guidance.describe import DescribeOptions, Pipeline

    names = sorted(path.stem for path in (DATA / "IVF" / "MSRS" / "ir").glob("*.png"))
    names = (names * args.pairs)[:args.pairs]
    server = LatencyServer(args.latency)
    times, outputs = {}, {}
    for n in (1, args.n):
        pipeline = Pipeline(["llm"], DescribeOptions(llm_url=server.url, llm_model="bench", llm_concurrency=n))
        loaded = [(f"{i}-{name}", pipeline.load([str(DATA / "IVF" / "MSRS" / role / f"{name}.png") for role in ("ir", "vi")], "ivf"))
                  for i, name in enumerate(names)]
        server.most = 0
        times[n], outputs[n] = run(pipeline, loaded, n)
        print(f"N={n}: {times[n]:.2f} s for {len(names)} pairs ({4 * len(names)} requests of {args.latency:g} s), "
              f"at most {server.most} requests in flight")
    if outputs[1] != outputs[args.n]:
        sys.exit("the documents differ between N=1 and N=%d" % args.n)
    print(f"ratio N=1 / N={args.n}: {times[1] / times[args.n]:.2f}x (bar: >= 3x at N=4); documents identical")


if __name__ == "__main__":
    main()
