"""mkdocs hooks (see mkdocs.yml): files the site serves that live outside docs/.

The order zips and the BOM files stay where their stages write them; copying them into docs/
would commit every binary twice.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

from openmetering.docs.pages import bom, fab
from openmetering.paths import ProjectPaths


def on_files(files: Files, config) -> Files:
    paths = ProjectPaths.at(Path(config["config_file_path"]).resolve().parent)
    use_urls = config["use_directory_urls"]
    site = config["site_dir"]
    for src, dest in fab.downloads(paths) + bom.bom_files(paths):
        f = File(dest, src_dir=None, dest_dir=site, use_directory_urls=use_urls)
        f.abs_src_path = str(src)
        files.append(f)
    return files
