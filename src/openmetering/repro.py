"""Byte-reproducible archives: fixed member times, sorted members, fixed permissions."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

from . import clock


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=clock.ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3
    return info


def write_text_if_changed(path: Path, text: str) -> None:
    """Leave an unchanged file alone (its time too), so a rebuild touches only what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def copy_if_changed(src: Path, dst: Path) -> None:
    """Copy src over dst unless they already hold the same bytes."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def sync_dir(staged: Path, dest: Path) -> list[Path]:
    """Make dest hold exactly the staged files (unchanged files are not rewritten)."""
    dest.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in staged.iterdir()}
    for old in dest.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    for p in sorted(staged.iterdir()):
        copy_if_changed(p, dest / p.name)
    return sorted(dest / n for n in names)


def write_zip(dest: Path, members: dict[str, bytes]) -> Path:
    """Write `members` (archive name -> bytes) to dest, sorted, with fixed metadata."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(members):
            zf.writestr(_member(name), members[name])
    tmp.replace(dest)
    return dest


_OFFICE_TIMES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def normalise_zip(path: Path, keep_order: bool = False) -> None:
    """Rewrite an existing zip (e.g. an .xlsx) with fixed member times, and fixed
    created/modified stamps in an Office file's docProps/core.xml.

    Office files need their original member order ([Content_Types].xml first)."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        data = {n: zf.read(n) for n in names}
    if "docProps/core.xml" in data:
        data["docProps/core.xml"] = _OFFICE_TIMES.sub(rb"\g<1>" + clock.ISO.encode() + rb"\g<2>",
                                                     data["docProps/core.xml"])
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in names if keep_order else sorted(names):
            zf.writestr(_member(name), data[name])
    tmp.replace(path)
