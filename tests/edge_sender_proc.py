"""A sender process for the kill -9 test: queue N cases durably, report their keys, then send.

usage: python tests/edge_sender_proc.py OUTBOX_DIR URL N
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support_edge import make_case, make_evidence  # noqa: E402
from vision.edge.delivery.outbox import Outbox  # noqa: E402
from vision.edge.delivery.sender import Sender  # noqa: E402


def main() -> None:
    directory, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    outbox = Outbox(directory)
    keys = []
    for _ in range(n):
        case = make_case()
        key = str(case.idempotency_key)
        files = [make_evidence(outbox.staging(key), "snapshot.jpg", 2000)]
        keys.append(outbox.put(case, files))
    print(json.dumps({"queued": keys}), flush=True)
    sender = Sender(outbox, url, "device-token", timeout_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.2).start()
    while True:
        time.sleep(0.2)
        if outbox.depth() == 0:
            print(json.dumps({"idle": True, "counts": outbox.counts()}), flush=True)
            sender.stop()
            return


if __name__ == "__main__":
    main()
