"""``python -m streamer.devbroker fetch|start|stop|status``."""

import sys

from streamer.devbroker.cli import main

sys.exit(main())
