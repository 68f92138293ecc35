"""`python requirements.py pyproject.toml GROUP...`: the pinned requirements of those groups.

`core` is `[project] dependencies`; any other name is an optional group (`serve`, `train`,
`server`, ...). The Dockerfile installs each image's groups from pyproject.toml, the one place
versions are pinned. A requirement two groups share (psycopg: the API's store and MLflow's
backend) is printed once.
"""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path(sys.argv[1]).read_text())["project"]
groups = {"core": project["dependencies"], **project["optional-dependencies"]}
wanted = [requirement for group in sys.argv[2:] for requirement in groups[group]]
print("\n".join(dict.fromkeys(wanted)))
