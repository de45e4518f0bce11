#!/usr/bin/env python3
"""KiBot looks for the interactive BOM under this name and runs it with python3; the pip
package installs it as `generate_interactive_bom`. No display here, as in the docs stage."""
import os
import sys

os.environ.setdefault("INTERACTIVE_HTML_BOM_NO_DISPLAY", "1")
from InteractiveHtmlBom.generate_interactive_bom import main  # noqa: E402

sys.exit(main())
