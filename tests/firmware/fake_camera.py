"""A `camera` module shaped like cnadler86/micropython-camera-API's, with an OV2640 behind it.

The sensor cannot exist here. What the fake does is read from the driver's source (commit
8df3f70) and esp32-camera's (driver/include/sensor.h, driver/sensor.c, driver/cam_hal.c):

* Camera(**kw) takes keyword-only arguments, rejects unknown ones (TypeError, as
  mp_arg_parse_all does), needs data_pins (8), pclk_pin, vsync_pin, href_pin and xclk_pin, and
  sda_pin/scl_pin without an i2c object, refuses xclk_freq above 40 MHz and, after storing
  jpeg_quality in an int8_t, anything outside 0..100 ("jpeg quality must be in range 0-100");
* the sensor's quality register gets map(q, 0, 100, 63, 0) in C integer arithmetic;
* FrameSize and PixelFormat have esp32-camera's enum values; the frame has the resolution of
  sensor.c's table; the OV2640 stops at UXGA;
* a JPEG frame buffer is width * height / 5 bytes (CONFIG_CAMERA_JPEG_MODE_FRAME_SIZE_AUTO):
  a larger JPEG overflows (FB-OVF), and capture() returns None as the driver's does when
  esp_camera_fb_get() fails; otherwise a memoryview of the JPEG.

The picture is a meter's display: an LCD window with digits on a shaded housing, with
sensor noise. How the OV2640's JPEG engine turns its quality register into quantization is
not documented; the fake encodes at libjpeg quality 100 - q * 100 / 63, i.e. the driver's
percentage back, which is how the driver's scale is meant to be read.
"""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


class PixelFormat:
    RGB565, YUV422, YUV420, GRAYSCALE, JPEG, RGB888, RAW, RGB444, RGB555 = range(9)


class FrameSize:
    (R96X96, QQVGA, R128x128, QCIF, HQVGA, R240X240, QVGA, R320X320, CIF, HVGA, VGA, SVGA,
     XGA, HD, SXGA, UXGA, FHD, P_HD, P_3MP, QXGA, QHD, WQXGA, P_FHD, QSXGA) = range(24)


RESOLUTION = [(96, 96), (160, 120), (128, 128), (176, 144), (240, 176), (240, 240), (320, 240),
              (320, 320), (400, 296), (480, 320), (640, 480), (800, 600), (1024, 768),
              (1280, 720), (1280, 1024), (1600, 1200), (1920, 1080), (720, 1280), (864, 1536),
              (2048, 1536), (2560, 1440), (2560, 1600), (1080, 1920), (2560, 1920)]
OV2640_MAX = FrameSize.UXGA

_ARGS = {"data_pins": None, "pclk_pin": None, "vsync_pin": None, "href_pin": None,
         "sda_pin": -1, "scl_pin": -1, "xclk_pin": None, "i2c": None, "xclk_freq": 20000000,
         "powerdown_pin": -1, "reset_pin": -1, "pixel_format": PixelFormat.RGB565,
         "frame_size": FrameSize.QQVGA, "jpeg_quality": 85, "fb_count": 2, "grab_mode": 1,
         "init": True}
_REQUIRED = ("data_pins", "pclk_pin", "vsync_pin", "href_pin", "xclk_pin")

opened = []  # every Camera constructed, for the tests


def _int8(v):
    return (int(v) + 128) % 256 - 128


def c_map(value, from_low, from_high, to_low, to_high):
    """modcamera.c's map(): int32 arithmetic, C division truncates toward zero."""
    num = (value - from_low) * (to_high - to_low)
    den = from_high - from_low
    q = abs(num) // abs(den)
    return (q if (num >= 0) == (den > 0) else -q) + to_low


def meter_scene(w, h, seed=3):
    """The display the camera looks at: (RGB uint8 array of the clean scene, noisy frame)."""
    shade = np.tile(np.linspace(60, 140, w), (h, 1))
    im = Image.fromarray(shade.astype(np.uint8))
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = w // 8, h // 3, w - w // 8, 2 * h // 3
    d.rectangle([x0, y0, x1, y1], fill=190)
    d.text((x0 + w // 32, y0 + h // 32), "012345.6", fill=25,
           font=ImageFont.load_default(size=max(8, (y1 - y0) * 2 // 3)))
    d.text((x0, y1 + h // 24), "kWh  import  L1", fill=220,
           font=ImageFont.load_default(size=max(6, h // 16)))
    base = np.asarray(im).astype(float)
    clean = np.stack([base, base * 0.95, base * 0.85], -1)
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0, 3, clean.shape), 0, 255)
    return clean.astype(np.uint8), noisy.astype(np.uint8), (x0, y0, x1, y1)


class Camera:
    def __init__(self, *args, **kw):
        if args:
            raise TypeError("function doesn't take positional arguments")
        for k in kw:
            if k not in _ARGS:
                raise TypeError(f"unexpected keyword argument '{k}'")
        a = dict(_ARGS)
        a.update(kw)
        for k in _REQUIRED:
            if a[k] is None:
                raise TypeError(f"'{k}' argument required")
        pins = a["data_pins"]
        if not isinstance(pins, list | bytearray):
            raise TypeError("data_pins must be a list or bytearray")
        if len(pins) != 8:
            raise ValueError("data_pins must have 8 elements")
        if a["i2c"] is None and (a["sda_pin"] == -1 or a["scl_pin"] == -1):
            raise ValueError("Either i2c object or sda_pin/scl_pin must be specified")
        if a["xclk_freq"] < 1000:
            a["xclk_freq"] *= 1000000
        if a["xclk_freq"] > 40000000:
            raise ValueError("xclk frequency cannot be grather than 40MHz")
        q = _int8(a["jpeg_quality"])
        if q < 0 or q > 100:
            raise ValueError("jpeg quality must be in range 0-100")
        if not 0 <= a["frame_size"] <= OV2640_MAX or not 0 <= a["pixel_format"] <= 8:
            raise OSError("Failed to capture initial frame. Construct a new object with "
                          "appropriate configuration.")
        self.args = a
        self.quality = q
        self.sensor_qs = c_map(q, 0, 100, 63, 0)  # what the OV2640's QS register gets
        self.width, self.height = RESOLUTION[a["frame_size"]]
        self.fb_size = self.width * self.height // 5
        self.frames = []
        opened.append(self)

    def capture(self):
        if self.args["pixel_format"] != PixelFormat.JPEG:
            raise NotImplementedError("the fake only makes JPEG frames")
        _, frame, _ = meter_scene(self.width, self.height, seed=len(self.frames))
        buf = io.BytesIO()
        Image.fromarray(frame, "RGB").save(buf, "JPEG",
                                           quality=max(1, round(100 - self.sensor_qs * 100 / 63)))
        jpeg = buf.getvalue()
        self.frames.append(jpeg)
        if len(jpeg) > self.fb_size:
            return None  # cam_hal: FB-OVF, esp_camera_fb_get() returns NULL
        return memoryview(jpeg)


def module():
    """The fake as an importable `camera` module object."""
    import types

    m = types.ModuleType("camera")
    m.Camera, m.FrameSize, m.PixelFormat = Camera, FrameSize, PixelFormat
    return m
