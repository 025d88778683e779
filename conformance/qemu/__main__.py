import sys

from conformance.qemu.cli import main

sys.exit(main())
