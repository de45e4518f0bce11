"""Camera evidence at the configured JPEG quality and frame size, through a driver-shaped fake."""

import io
import json
import sys
from pathlib import Path

import config
import evidence
import main
import numpy as np
import pytest
from PIL import Image

import contract

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_camera  # noqa: E402
import wrap_scenario as ws  # noqa: E402

from firmware.tools import gen_esphome  # noqa: E402

CAM = config.DEFAULTS["camera"]


@pytest.fixture()
def camera_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "camera", fake_camera.module())
    fake_camera.opened.clear()
    return fake_camera


def window_psnr(jpeg):
    """PSNR (dB) of the decoded picture's display window against the scene without noise."""
    im = Image.open(io.BytesIO(jpeg))
    clean, _, (x0, y0, x1, y1) = fake_camera.meter_scene(*im.size)
    got = np.asarray(im.convert("RGB")).astype(float)[y0:y1, x0:x1]
    mse = ((got - clean[y0:y1, x0:x1].astype(float)) ** 2).mean()
    return 10 * np.log10(255 ** 2 / mse)


def shoot(tmp_path, ct, frame_size, pct):
    """Boot photo through open_camera -> Evidence -> App's signed upload -> next reading."""
    uploads = []

    def http(url, body, ctype="application/json", headers=None):
        uploads.append((url, body, ctype, headers))
        return 201

    cam, status = evidence.open_camera(frame_size, pct)
    cfg, _ = config.load(str(tmp_path / "none.json"))
    cfg["key_hex"] = ws.KEY_HEX
    clock = ws.WrapClock(0)
    ev = evidence.Evidence(cam, None, CAM["every_s"], clock, status)
    app = ws.make_app(main, config, str(tmp_path / "d"), clock, http, 500.0, cfg=cfg, ct=ct,
                      evidence=ev)
    app.pump()
    clock.advance(10_000)
    r = app.step()
    images = [u for u in uploads if u[0] == app.tp.image_url]
    return cam, ev, images, r


def test_the_two_scales(camera_module):
    # the firmware's conversion is the driver's map() for every percentage
    for pct in range(101):
        assert evidence.esp32_camera_quality(pct) == fake_camera.c_map(pct, 0, 100, 63, 0)
    # both drivers' defaults meet: camera-API 85 % is esp32-camera's 10
    assert evidence.esp32_camera_quality(85) == 10
    assert evidence.esp32_camera_quality(CAM["jpeg_quality_pct"]) == 12  # the intended 12
    for bad in (-1, 101, 12.5, "82", True, None):
        with pytest.raises(ValueError, match="0..100"):
            evidence.check_quality(bad)


def test_the_fake_checks_arguments_as_the_driver_does(camera_module):
    kw = evidence.camera_kwargs("VGA", 50)
    kw.update(frame_size=fake_camera.FrameSize.VGA, pixel_format=fake_camera.PixelFormat.JPEG)
    for q in (-1, 101, 127):
        with pytest.raises(ValueError, match="jpeg quality must be in range 0-100"):
            fake_camera.Camera(**dict(kw, jpeg_quality=q))
    assert fake_camera.Camera(**dict(kw, jpeg_quality=300)).quality == 44  # int8_t, as in C
    with pytest.raises(TypeError, match="unexpected keyword"):
        fake_camera.Camera(**dict(kw, quality=50))
    with pytest.raises(TypeError, match="required"):
        fake_camera.Camera(**{k: v for k, v in kw.items() if k != "xclk_pin"})


def test_quality_is_one_fact_with_its_scale(camera_module):
    pct = CAM["jpeg_quality_pct"]
    assert isinstance(pct, int) and 0 <= pct <= 100
    assert evidence.camera_kwargs.__defaults__ is None and evidence.open_camera.__defaults__ is None
    yaml = gen_esphome.generate()
    assert f"  jpeg_quality: {evidence.esp32_camera_quality(pct)}\n" in yaml
    assert f"  resolution: {CAM['frame_size']}\n" in yaml
    assert quality_literals() == [("config.py", pct)]  # everyone else reads config.DEFAULTS


def quality_literals():
    """Every JPEG quality number written in firmware/: dict entries, keywords, defaults,
    and `jpeg_quality: N` in generator templates."""
    import ast
    import re

    out = []
    for p in sorted(Path(evidence.__file__).parent.rglob("*.py")):
        src = p.read_text()
        out += [(p.name, int(n)) for n in re.findall(r"jpeg_quality: (\d+)", src)]
        for node in ast.walk(ast.parse(src)):
            pairs = []
            if isinstance(node, ast.Dict):
                pairs = [(k.value, v) for k, v in zip(node.keys, node.values, strict=True)
                         if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            elif isinstance(node, ast.keyword) and node.arg:
                pairs = [(node.arg, node.value)]
            elif isinstance(node, ast.arguments):
                args = node.posonlyargs + node.args
                pairs = [(a.arg, d) for a, d in zip(args[len(args) - len(node.defaults):],
                                                    node.defaults, strict=True)]
            out += [(p.name, v.value) for k, v in pairs if "quality" in k
                    and isinstance(v, ast.Constant) and isinstance(v.value, int)]
    return out


def test_evidence_at_the_configured_quality_and_size(tmp_path, ct, camera_module):
    cam, ev, images, reading = shoot(tmp_path, ct, CAM["frame_size"], CAM["jpeg_quality_pct"])
    assert ev.status == "camera: ok" and len(images) == 1
    assert cam.sensor_qs == evidence.esp32_camera_quality(CAM["jpeg_quality_pct"]) == 12
    url, body, ctype, headers = images[0]
    im = Image.open(io.BytesIO(body))
    assert im.format == "JPEG" and im.size == (640, 480)  # the configured VGA
    assert len(body) <= cam.fb_size  # fits the driver's JPEG frame buffer (w * h / 5)
    assert window_psnr(body) > 34  # the digits come out clean
    sha = contract.sha256_hex(body)
    assert ctype == ct.transport["image"]["content_type"]
    assert headers[ct.transport["image"]["sha256_header"]] == sha
    assert reading["image_sha256"] == sha  # announced in the next signed reading


def test_the_old_value_gave_an_unreadable_picture(tmp_path, ct, camera_module):
    _, _, images, _ = shoot(tmp_path, ct, CAM["frame_size"], 12)  # 12 read as percent
    good = window_psnr(shoot(tmp_path / "b", ct, CAM["frame_size"], CAM["jpeg_quality_pct"])[2][0][1])
    assert window_psnr(images[0][1]) < good - 5


def test_a_frame_too_big_for_the_buffer_is_reported_not_uploaded(tmp_path, ct, camera_module):
    cam, ev, images, reading = shoot(tmp_path, ct, "VGA", 100)
    assert len(cam.frames[0]) > cam.fb_size  # FB-OVF in the driver
    assert images == [] and ev.status == "camera: empty frame" and ev.failures == 1
    assert "image_sha256" not in reading  # and metering went on


@pytest.mark.parametrize("frame_size, pct, status", [
    ("VGA", 300, "camera: camera.jpeg_quality_pct must be an integer 0..100"),
    ("VGA", 12.5, "camera: camera.jpeg_quality_pct must be an integer 0..100"),
    ("VGAA", 82, "camera: unknown frame_size 'VGAA'"),
    ("QXGA", 82, "camera: not detected"),  # beyond the OV2640
])
def test_bad_camera_config_gives_a_clear_status(camera_module, frame_size, pct, status):
    cam, got = evidence.open_camera(frame_size, pct)
    assert cam is None and got.startswith(status)


@pytest.mark.parametrize("stored, want", [
    ({"jpeg_quality": 12}, CAM["jpeg_quality_pct"]),  # 0.1.0's default, on the wrong scale
    ({"jpeg_quality": 60}, 60),  # someone's choice, always read as percent by the driver
    ({"jpeg_quality": 12, "jpeg_quality_pct": 70}, 70),
    ({"jpeg_quality_pct": 75}, 75),
    ({}, CAM["jpeg_quality_pct"]),
])
def test_configs_of_the_old_firmware_are_migrated(tmp_path, stored, want):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"camera": stored}))
    cfg, _ = config.load(str(p))
    assert cfg["camera"]["jpeg_quality_pct"] == want and "jpeg_quality" not in cfg["camera"]
    assert config.DEFAULTS["camera"] == CAM and "jpeg_quality" not in CAM
