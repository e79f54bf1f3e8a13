"""`python -m nas.cli`: the same as the `nas` command."""

import sys

from . import main

sys.exit(main())
