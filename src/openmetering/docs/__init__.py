"""The docs stage: the site's generated pages from the design's files, then `mkdocs build
--strict`.

- `core`      inputs, fragments and the Markdown table helpers
- `pages/`    one module per page family, each declaring its inputs and fragments
- `diagrams`  the PlantUML drawings
- `site`      generate every fragment, then build the site
- `hooks`     the mkdocs hook that serves the order files from where the fab stage wrote them
"""
