"""`python -m memory replay ...`: a thin entry point to the replay tool (replay_tool.py), which
builds memory from the settings as the bot does."""

import sys

from replay_tool import main

sys.exit(main())
