"""Entry point PyInstaller freezes: the same ``station`` command as the console script."""

from __future__ import annotations

import sys

from station.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
