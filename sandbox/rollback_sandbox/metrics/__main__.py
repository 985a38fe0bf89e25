"""`python -m rollback_sandbox.metrics`: the simulated cluster's metrics source."""

import sys

from rollback_sandbox.metrics.main import main

sys.exit(main())
