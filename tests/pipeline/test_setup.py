"""scripts/setup.sh takes bookworm-backports from the Debian mirror the machine already uses,
and says so clearly when it finds none; it names no package registry itself."""

from __future__ import annotations

import os
import subprocess

import pytest

from openmetering.paths import project

SETUP = project().root / "scripts" / "setup.sh"

DEB822 = """Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src deb
# a comment inside the stanza
URIs: http://mirror.example/debian http://second.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def mirror(apt_dir) -> subprocess.CompletedProcess:
    return subprocess.run([str(SETUP), "--print-debian-mirror"], capture_output=True, text=True,
                          env=dict(os.environ, APT_DIR=str(apt_dir)), timeout=60)


@pytest.mark.parametrize("layout,want", [
    ({"sources.list.d/debian.sources": DEB822}, "http://mirror.example/debian"),
    ({"sources.list": "# old style\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian "
                      "bookworm main\n"}, "http://one.example/debian"),
    ({"sources.list.d/off.sources": "Enabled: no\nTypes: deb\nURIs: http://off.example/d\n"
                                    "Suites: bookworm\n",
      "sources.list.d/mirror.list": "deb http://two.example/debian bookworm main\n"},
     "http://two.example/debian"),
])
def test_mirror_comes_from_the_machines_sources(tmp_path, layout, want):
    for name, text in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    proc = mirror(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == want


def test_no_bookworm_source_is_reported(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://x.example/debian trixie main\n")
    proc = mirror(tmp_path)
    assert proc.returncode != 0 and proc.stdout.strip() == ""


def test_setup_names_no_registry_host():
    text = SETUP.read_text()
    for host in ("debian.org", "npmjs.org", "pypi.org", "pythonhosted.org"):
        assert host not in text, host
