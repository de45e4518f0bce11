import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
if str(FW) not in sys.path:
    sys.path.insert(0, str(FW))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def ct():
    import contract

    return contract.load(str(ROOT / "contract"))


@pytest.fixture(scope="session")
def schema():
    return json.loads((ROOT / "contract" / "reading.schema.json").read_text())


@pytest.fixture(scope="session")
def vectors():
    return json.loads((ROOT / "contract" / "vectors.json").read_text())
