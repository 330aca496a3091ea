"""`python -m memory replay ...`: see memory/replay.py."""

import sys

from memory.replay import main

sys.exit(main())
