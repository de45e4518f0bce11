"""mkdocs hooks (see mkdocs.yml): files the site serves that live outside docs/.

The order zips and the BOM files stay where their stages write them; copying them into
docs/ would commit every binary twice.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

from openmetering import docs


def on_files(files: Files, config) -> Files:
    root = Path(config["config_file_path"]).resolve().parent
    use_urls = config["use_directory_urls"]
    site = config["site_dir"]

    def add(src: Path, dest: str) -> None:
        f = File(dest, src_dir=None, dest_dir=site, use_directory_urls=use_urls)
        f.abs_src_path = str(src)
        files.append(f)

    if docs.BY_KEY["gerbers"].exists(root):
        for src, dest in docs.downloads(root):
            add(src, dest)
    for src, dest in docs.bom_files(root):
        add(src, dest)
    # Pages that other stages write into docs/generated/ get a stand-in while they are
    # pending, so the nav stays valid; a missing non-pending one fails the build instead.
    for key in docs.FOREIGN_PAGES:
        inp = docs.BY_KEY[key]
        rel = inp.path.removeprefix("docs/")
        if key in docs.PENDING and not inp.exists(root) and files.get_file_from_path(rel) is None:
            title = Path(rel).stem.replace("-", " ").capitalize()
            files.append(File.generated(config, rel, content=f"# {title}\n\n"
                                        + docs.pending_notice(inp)))
    return files
