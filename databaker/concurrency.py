"""How many threads the Arrow-side work (reading drops, cutting and comparing outcode files)
uses: every core up to four, beyond which the store's throughput, not the CPU, limits it."""

import os

WORKERS = min(os.cpu_count() or 1, 4)
