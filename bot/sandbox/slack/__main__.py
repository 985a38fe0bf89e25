"""`python -m bot.sandbox.slack`: the local Slack workspace on its own."""

import sys

from bot.sandbox.slack.main import main

sys.exit(main())
