# Camera evidence: a JPEG of the inverter / utility meter display, on a schedule and on
# request, uploaded to the server; its SHA-256 goes into the next reading.
#
# Camera API: cnadler86/micropython-camera-API (`from camera import Camera, PixelFormat,
# FrameSize`), chosen over lemariva/micropython-camera-driver because it is maintained,
# builds against current MicroPython/ESP-IDF 5 and ships prebuilt ESP32-S3 firmware with
# octal PSRAM (the N8R8 needs it for frame buffers); lemariva's targets ESP32/IDF 4 only.
# A missing camera (no module in the firmware, no sensor on the FPC) is reported, not fatal.
#
# JPEG quality has two scales. This driver's Camera(jpeg_quality=...) is a percentage, 0-100,
# higher = better: its src/modcamera_api.c raises "jpeg quality must be in range 0-100", its
# README says "Quality of JPEG output in percent. Higher means higher quality", and
# src/modcamera.c hands esp32-camera map(quality, 0, 100, 63, 0) (cnadler86/micropython-
# camera-API at 8df3f70). esp32-camera's own camera_config_t.jpeg_quality is "0-63 lower
# means higher quality" (espressif/esp32-camera driver/include/esp_camera.h), and ESPHome's
# esp32_camera jpeg_quality passes straight through to it. config.py holds the percentage.
import pinmap
import ticks


def check_quality(pct):
    """The configured JPEG quality, or ValueError: an integer percentage, 0..100."""
    if not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100:
        raise ValueError("camera.jpeg_quality_pct must be an integer 0..100 (percent, "
                         "higher = better), got %r" % (pct,))
    return pct


def esp32_camera_quality(pct):
    """esp32-camera's 0..63 value (lower = better) the driver programs for pct percent.

    modcamera.c's map() in integer C arithmetic: 63 + (pct * -63) / 100, truncated to zero."""
    return 63 - check_quality(pct) * 63 // 100


def camera_kwargs(frame_size, quality_pct):
    """Constructor arguments for camera.Camera from the pin map (D0..D7 = Y2..Y9)."""
    return {
        "data_pins": [pinmap.gpio("CAM_D%d" % i) for i in range(8)],
        "vsync_pin": pinmap.gpio("CAM_VSYNC"),
        "href_pin": pinmap.gpio("CAM_HREF"),
        "sda_pin": pinmap.gpio("CAM_SIOD"),
        "scl_pin": pinmap.gpio("CAM_SIOC"),
        "pclk_pin": pinmap.gpio("CAM_PCLK"),
        "xclk_pin": pinmap.gpio("CAM_XCLK"),
        "xclk_freq": 20000000,
        "powerdown_pin": pinmap.gpio("CAM_PWDN"),
        "reset_pin": -1,  # RESET is tied to the RC/pull-up on the board, not to a GPIO
        "frame_size": frame_size,
        "jpeg_quality": check_quality(quality_pct),
        "fb_count": 1,
    }


def open_camera(frame_size, quality_pct):
    """(camera or None, status text). Never raises."""
    try:
        from camera import Camera, FrameSize, PixelFormat
    except ImportError:
        return None, "camera: firmware has no camera module (flash the camera-API build)"
    try:
        kw = camera_kwargs(frame_size, quality_pct)
    except ValueError as e:
        return None, "camera: %s" % e
    kw["frame_size"] = getattr(FrameSize, frame_size, None)
    if kw["frame_size"] is None:
        return None, "camera: unknown frame_size %r (a FrameSize name, e.g. VGA)" % frame_size
    try:
        kw["pixel_format"] = PixelFormat.JPEG
        cam = Camera(**kw)
        return cam, "camera: ok"
    except Exception as e:  # noqa: BLE001 - driver raises assorted errors when no sensor
        return None, "camera: not detected (%s)" % e


class Evidence:
    """Schedules captures; upload(jpeg) -> HTTP status; clock() -> ms."""

    def __init__(self, cam, upload, every_s, clock, status=""):
        self.cam = cam
        self.upload = upload
        # a schedule must stay measurable by ticks_diff (< PERIOD/2, 6.2 days)
        self.every = min(every_s * 1000, ticks.HALF // 2)
        self.clock = clock
        self.status = status if cam is not None else (status or "camera: missing")
        self.last = None
        self.requested = True  # one picture at boot documents the installation
        self.pending_sha = None  # goes into the next reading, then cleared
        self.failures = 0

    def request(self):
        self.requested = True

    def due(self):
        now = self.clock()
        return (self.requested or self.last is None
                or ticks.elapsed(now, self.last) >= self.every)

    def poll(self):
        """Capture + upload if due. Returns the SHA-256 hex of an uploaded image or None."""
        if self.cam is None or not self.due():
            return None
        import contract

        self.last = self.clock()
        try:
            img = self.cam.capture()
        except Exception as e:  # noqa: BLE001
            self.status = "camera: capture failed (%s)" % e
            self.failures += 1
            return None
        if not img:
            self.status = "camera: empty frame"
            self.failures += 1
            return None
        img = bytes(img)
        sha = contract.sha256_hex(img)
        code = self.upload(img, sha)
        if 200 <= code < 300:
            self.requested = False
            self.pending_sha = sha
            self.status = "camera: ok"
            return sha
        self.status = "camera: upload failed (%d)" % code
        self.failures += 1
        return None

    def take_sha(self):
        s = self.pending_sha
        self.pending_sha = None
        return s
