import sys

from conformance.cli.qemu import main

sys.exit(main())
