"""The server's oracle-side pieces without a chain: the public routes are off unless enabled,
the tokenized-energy discovery configs follow Home Assistant's rules for their classes and
units, values convert exactly, and failure reasons read as text or as named reverts."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak
from fastapi.testclient import TestClient
from omd_server import contract, tokens_ha
from omd_server.app import create_app
from omd_server.config import Config
from omd_server.oracle import reason_text

# Home Assistant's units per sensor device class (the ones used here), and the rule that a
# timestamp sensor has no state class and no unit
HA_UNITS = {"energy": {"Wh", "kWh", "MWh", "GJ", "MJ"}, "weight": {"kg", "g", "mg", "t"}}


def _app(tmp_path, **over):
    cfg = Config(database_url=f"sqlite:///{tmp_path}/omd.db", image_dir=str(tmp_path / "i"))
    for k, v in over.items():
        setattr(cfg, k, v)
    return create_app(cfg)


def test_public_data_is_off_by_default(tmp_path):
    with TestClient(_app(tmp_path)) as c:
        assert c.get("/public").status_code == 404
        r = c.get("/api/v1/public/intervals")
        assert r.status_code == 404 and r.json()["detail"][0]["type"] == "not_found"


def test_public_data_on(tmp_path):
    with TestClient(_app(tmp_path, public_data=True)) as c:
        r = c.get("/api/v1/public/intervals")
        assert r.status_code == 200 and r.json()["intervals"] == []
        assert c.get("/api/v1/public/intervals?meter_id=BAD!").status_code == 422
        assert c.get("/public").status_code == 200


def test_discovery_configs_are_valid_for_home_assistant():
    confs = tokens_ha.discovery_configs("sun-01")
    assert len(confs) == len(tokens_ha.spec()["sensors"]) == 8
    ha = contract.homeassistant()
    ids = set()
    for topic, c in confs.items():
        assert topic.startswith(ha["discovery_prefix"] + "/sensor/sun-01/tokens_")
        assert c["device"]["identifiers"] == ["omd_sun-01"]
        assert c["default_entity_id"].startswith("sensor.omd_sun_01_tokens_")
        ids.add(c["unique_id"])
        dc, sc, unit = c.get("device_class"), c.get("state_class"), c.get("unit_of_measurement")
        if dc == "timestamp":
            assert sc is None and unit is None
        elif dc is not None:
            assert unit in HA_UNITS[dc], c
            assert sc in ("measurement", "total", "total_increasing")
        else:
            assert sc == "measurement" and unit is None
    assert len(ids) == 8


def test_state_converts_exactly():
    fig = {"certified_total_mj": 3_600_000_000, "certified_today_mj": 1_800_000_000,
           "intervals_pending": 2, "intervals_failed": 1, "ac_balance_mg": 1_500_000,
           "ac_retired_mg": 250, "last_fulfilled_at": 1_722_000_000, "block": 77}
    s = tokens_ha.state_payload(fig)
    assert s["certified_energy_total"] == 1.0 and s["certified_energy_today"] == 0.5
    assert s["ac_balance"] == 1.5 and s["ac_retired"] == 0.00025
    assert s["last_fulfilment"] == "2024-07-26T13:20:00+00:00"
    assert (s["intervals_pending"], s["intervals_failed"], s["chain_block"]) == (2, 1, 77)
    assert tokens_ha.state_payload(dict(fig, last_fulfilled_at=None))["last_fulfilment"] is None


def test_failure_reasons_read_as_text_or_named_reverts():
    abi = [{"type": "error", "name": "InvalidDeviceSignature",
            "inputs": [{"name": "meterId", "type": "bytes32"},
                       {"name": "recovered", "type": "address"}]}]
    data = keccak(b"InvalidDeviceSignature(bytes32,address)")[:4] + encode(
        ["bytes32", "address"], [b"\x11" * 32, "0x" + "22" * 20])
    assert reason_text(data, [abi]) == (
        "InvalidDeviceSignature(0x" + "11" * 32 + ", 0x2222222222222222222222222222222222222222)")
    assert reason_text(b"server: HTTP 404 no attestation", [abi]) == \
        "server: HTTP 404 no attestation"
    assert reason_text(b"", [abi]).startswith("reverted without a reason")
    assert reason_text(b"\xde\xad\xbe\xef", [abi]) == "0xdeadbeef"


def test_verify_refuses_hostile_answers_without_crashing():
    from omd_server import verify

    for doc in ([], {"attestation": "x"}, {"attestation": {}, "batch": {"readings": "no"}},
                {"attestation": {"seq": 1}, "batch": {"readings": [{}]}}):
        checks = verify.check(doc, None)
        assert checks and not all(p for _, p, _ in checks), doc
