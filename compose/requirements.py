"""`python requirements.py pyproject.toml GROUP...`: the pinned requirements of those groups.

`core` is `[project] dependencies`; any other name is an optional group (`serve`, `train`,
`server`, ...). The Dockerfile installs each image's groups from pyproject.toml, the one place
versions are pinned.
"""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path(sys.argv[1]).read_text())["project"]
groups = {"core": project["dependencies"], **project["optional-dependencies"]}
print("\n".join(requirement for group in sys.argv[2:] for requirement in groups[group]))
