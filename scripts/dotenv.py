"""Write .env from .env.example once, with a fresh random value for each empty password or token.

`make setup` runs it, so that `docker compose up` finds its passwords; an existing .env is
never touched.
"""

import re
import secrets
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
target, example = root / ".env", root / ".env.example"
if target.exists():
    sys.exit(0)
text = re.sub(
    r"^(\w*(?:PASSWORD|TOKEN))=$",
    lambda match: f"{match[1]}={secrets.token_urlsafe(18)}",
    example.read_text(),
    flags=re.MULTILINE,
)
target.touch(mode=0o600)
target.write_text(text)
print(f"wrote {target.name} (passwords and the admin token generated; see {example.name})")
