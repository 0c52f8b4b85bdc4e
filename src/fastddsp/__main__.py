import os
import sys

try:  # an interrupt while the CLI itself loads is still one line and exit 130
    from .cli.main import main
except KeyboardInterrupt:
    print("fastddsp: interrupted", file=sys.stderr)
    sys.stderr.flush()
    os._exit(130)

main()
