"""`python -m rollback_sandbox.slack`: the local Slack workspace on its own."""

import sys

from rollback_sandbox.slack.main import main

sys.exit(main())
