"""The Functions source (oracle/source.js) in the toolkit's simulateScript (Deno), against a
local HTTP server answering with good, malformed and hostile documents: the good one becomes
the 192-byte answer FunctionsConsumer decodes, each bad one a clear error (which the consumer
records as a retryable failure), never a result."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from omd_server import attestation as ref

from openmetering import chain, oracle

VEC = json.loads((Path(__file__).resolve().parents[2] / "contract" /
                  "attestation-vectors.json").read_text())
GOOD = VEC["cases"][1]["wire"]

RUN = r"""
const toolkit = require("@chainlink/functions-toolkit")
const fs = require("fs")
const jobs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
;(async () => {
  const out = []
  for (const args of jobs.args) {
    const r = await toolkit.simulateScript({ source: jobs.source, args })
    out.push({ result: r.responseBytesHexstring, error: r.errorString })
  }
  process.stdout.write(JSON.stringify(out) + "\n")
})()
"""


def pack(a: dict) -> str:
    """What FunctionsConsumer.relay decodes, built independently of source.js."""
    from eth_abi import encode

    w0 = a["seq"] << 192 | a["intervalStart"] << 128 | a["intervalEnd"] << 64 | a["exportMj"]
    w1 = a["importMj"] << 96 | a["firstReadingSeq"] << 32 | a["readingCount"]
    r, s, v = ref.split_signature(a["signature"])
    return "0x" + encode(["uint256", "uint256", "bytes32", "bytes32", "bytes32", "uint256"],
                         [w0, w1, bytes.fromhex(a["readingsRoot"][2:]), r.to_bytes(32, "big"),
                          s.to_bytes(32, "big"), v]).hex()


def test_source_checks_shape_and_encodes(tmp_path):
    sig = GOOD["signature"]
    bad_v = sig[:-2] + "1d"
    docs = {
        "meter-01": {},
        "notjson": None,
        "other-meter": {"meterId": "meter-99"},
        "big": {"exportMj": 2**60},
        "negative": {"importMj": -1},
        "bad-v": {"signature": bad_v},
        "short-sig": {"signature": "0x1234"},
        "upper-root": {"readingsRoot": "0x" + GOOD["readingsRoot"][2:].upper()},
    }
    answers = {n: (200, "<html>hello</html>" if d is None else
                   json.dumps({"attestation": dict(GOOD, **({"meterId": n} | d)), "batch": {}}))
               for n, d in docs.items()}
    answers["other-meter"] = (200, json.dumps({"attestation": dict(GOOD, meterId="meter-99")}))
    answers["no-att"] = (200, json.dumps({"detail": "nothing"}))
    answers["missing"] = (404, json.dumps({"detail": [{"msg": "no attestation 2"}]}))

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            meter = self.path.split("/")[4]
            code, body = answers[meter]
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    down = f"http://127.0.0.1:{chain.free_port()}"
    names = list(answers)
    cases = [[base, n, "2"] for n in names]
    cases.append([base, "meter-01", "3"])  # another seq than the document's
    cases.append([down, "meter-01", "2"])  # the server is down
    cases.append(["ftp://x", "meter-01", "2"])
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"source": oracle.request_source(), "args": cases}))
    (tmp_path / "run.js").write_text(RUN)
    try:
        p = subprocess.run(["node", str(tmp_path / "run.js"), str(job)], env=oracle.node_env(),
                           capture_output=True, text=True, timeout=300)
    finally:
        httpd.shutdown()
    assert p.returncode == 0, p.stderr
    res = dict(zip(["good", *names[1:], "seq", "down", "url"],
                   json.loads(p.stdout.strip().splitlines()[-1]), strict=True))
    assert res["good"].get("error") is None and res["good"]["result"] == pack(GOOD)
    assert len(bytes.fromhex(res["good"]["result"][2:])) == 192
    want = {
        "notjson": "server: answer is not JSON",
        "other-meter": "shape: meterId meter-99 is not other-meter",
        "big": "shape: exportMj is not an exact unsigned integer",
        "negative": "shape: importMj is not an exact unsigned integer",
        "bad-v": "shape: signature v is",
        "short-sig": "shape: signature is not 0x + 130",
        "upper-root": "shape: readingsRoot is not 0x + 64 lowercase",
        "no-att": "shape: no attestation object",
        "missing": "server: HTTP 404",
        "seq": "shape: seq 2 is not the requested 3",
        "down": "server: HTTP 400",
        "url": "bad baseUrl",
    }
    for name, text in want.items():
        assert res[name].get("result") is None, name
        assert res[name].get("error", "").startswith(text), (name, res[name])
    assert "no attestation 2" in res["missing"]["error"]


def test_source_survives_the_simulators_insertion():
    # the toolkit inserts the source with String.replace: "$`", "$'" and "$&" would expand
    src = oracle.request_source()
    for pair in ("$`", "$'", "$&"):
        assert pair not in src
    assert len(src.encode()) < 3500  # stored by the consumer, read on every request
