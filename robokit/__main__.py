import sys

from robokit.cli import main

sys.exit(main())
