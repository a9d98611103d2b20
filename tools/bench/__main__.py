"""``python -m tools.bench``: the pipeline benchmark (``tools.bench.bench``)."""
import sys

from tools.bench.bench import main

sys.exit(main())
