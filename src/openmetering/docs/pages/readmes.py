"""The firmware's and the server's READMEs inside the site, links to repository files turned
into plain paths."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...paths import ProjectPaths
from ..core import Fragment, Input

FIRMWARE_README = Input("firmware_readme", "firmware_readme", "firmware (firmware/README.md)")
SERVER_README = Input("server_readme", "server_readme", "server (server/README.md)")
MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def gen_readme(paths: ProjectPaths, inp: Input) -> str:
    """Another part's README inside a page: headings one level down, and links to files of
    the repository (which are not part of the site) turned into plain paths."""
    path = inp.path(paths)
    base = Path(paths.rel(path)).parent
    text = path.read_text(encoding="utf-8")

    def link(m):
        bang, label, target = m.groups()
        if re.match(r"^[a-z]+:|^#", target):
            return m.group(0)
        repo_path = os.path.normpath(base / target.split("#")[0]).replace(os.sep, "/")
        plain = label.strip("`").rstrip("/")
        if plain and (repo_path == plain or repo_path.endswith("/" + plain)):
            return label  # the label already names the file
        return f"{label} (`{repo_path}`)" if label and not bang else f"`{repo_path}`"

    out, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        if not fence:
            if line.startswith("#"):
                line = "#" + line
            line = MD_LINK.sub(link, line)
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


FRAGMENTS = (
    Fragment("firmware-readme", (FIRMWARE_README,), lambda p: gen_readme(p, FIRMWARE_README)),
    Fragment("server-readme", (SERVER_README,), lambda p: gen_readme(p, SERVER_README)),
)
