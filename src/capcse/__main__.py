import sys

from capcse.cli import main

sys.exit(main())
