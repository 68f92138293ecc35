"""JupyterLab as the course needs it: `make lab` runs `jupyter lab --config=<this file>`.

Only this JupyterLab reads it: your own settings (~/.jupyter) are left as they are, and what you
change in the settings editor is still saved there. `settings/overrides.json` makes Markdown open
rendered (START.md is a page of links, not text to edit) and turns off the news pop-up (a
classroom behind a firewall gains nothing from it).
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # noqa: F821 (Jupyter's config loader provides it)

c.ServerApp.root_dir = str(HERE.parent)
c.LabApp.default_url = "/lab/tree/START.md"
c.LabApp.app_settings_dir = str(HERE / "settings")
# Build and cache folders have nothing for a learner: keep them out of the file browser.
c.ContentsManager.hide_globs = ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", "*.egg-info"]
# Kernels on encrypted sockets: no "running over TCP without encryption" warning (app/pipeline.py).
c.KernelManager.transport_encryption = "auto"

# As root (a container, a devcontainer, some WSL set-ups) JupyterLab refuses to start unless
# told; we tell it, and say why it is worth avoiding.
if hasattr(os, "getuid") and os.getuid() == 0:
    c.ServerApp.allow_root = True
    sys.stderr.write(
        "warning: JupyterLab runs as root (--allow-root): fine in a throwaway container; on your "
        "own machine run `make lab` as your own user, since every notebook runs as its user\n"
    )
