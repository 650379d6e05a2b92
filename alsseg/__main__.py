import sys

from alsseg.cli import main

sys.exit(main())
