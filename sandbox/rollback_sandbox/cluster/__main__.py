"""`python -m rollback_sandbox.cluster`: the same as `rollback-sandbox`."""

import sys

from rollback_sandbox.cluster.main import main

sys.exit(main())
