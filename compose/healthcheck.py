"""`python healthcheck.py URL`: exit 0 when URL answers 200 within 5 s (a container healthcheck).

Every image of ours has Python and none has curl: this keeps it that way.
"""

import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(f"{sys.argv[1]}: {error}", file=sys.stderr)
    sys.exit(1)
