"""Reads Spire's stderr of one `spire ingest` run (SPIRE_LOG=spire_ingest=debug) and prints
the intake's steady-state timing: from the first partition assignment (Kafka; the process
start for files) to the last committed batch, and the stage lines' own seconds.

    python timings.py STDERR_FILE EVENTS WALL_SECONDS
"""
import json
import re
import sys
from datetime import datetime

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
STAGE = re.compile(r"^✓ (.*) \(([0-9.]+) s\)$")


def main() -> None:
    path, events, wall = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    assigned = committed = None
    stages = {}
    for raw in open(path, encoding="utf-8", errors="replace"):
        line = ANSI.sub("", raw.rstrip("\n"))
        m = STAGE.match(line)
        if m:
            stages[m.group(1).split(":")[0]] = float(m.group(2))
            continue
        t = TS.match(line)
        if not t:
            continue
        when = datetime.fromisoformat(t.group(1))
        if "partitions assigned" in line and assigned is None:
            assigned = when
        if "intake batch committed" in line:
            committed = when
    out = {"events": events, "wall_s": round(wall, 3), "stages_s": stages}
    if assigned and committed:
        steady = (committed - assigned).total_seconds()
        out.update({"steady_s": round(steady, 3), "per_s": round(events / steady)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
