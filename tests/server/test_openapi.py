"""server/openapi.json is generated, never hand-edited: it must equal a fresh generation."""

import json
import subprocess
import sys
from pathlib import Path

from omd_server import contract

OPENAPI = Path(__file__).resolve().parents[2] / "server" / "openapi.json"


def test_committed_openapi_matches_the_app():
    fresh = subprocess.run([sys.executable, "-m", "omd_server.cli", "openapi"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert OPENAPI.read_text(encoding="utf-8") == fresh, (
        "server/openapi.json is stale: run `omd-server openapi --out server/openapi.json`")
    doc = json.loads(fresh)
    # the request schema is the shared contract itself, not a re-typed model
    reading = doc["components"]["schemas"]["Reading"]
    assert reading["properties"] == contract.schema()["properties"]
    for path in ("/api/v1/readings", "/api/v1/readings/batch", "/api/v1/meters/{meter_id}/images",
                 "/api/v1/meters/{meter_id}/energy", "/api/v1/meters/{meter_id}/readings.csv"):
        assert path in doc["paths"]


def test_make_docs_entry_point_checks_the_same_file():
    res = subprocess.run([sys.executable, "-m", "omd_server.openapi", "--check"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
