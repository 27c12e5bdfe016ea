"""Writes N clickstream events as JSON Lines (the canonical schema Spire's parser reads),
deterministically: bench/intake's input for both Spire and the Python peer.

    python gen_events.py OUT.jsonl N
"""
import json
import random
import sys

CATEGORIES = ["tech", "travel", "sport", "finance", "food", "fashion", "auto", "health"]
TYPES = ["pageview", "pageview", "pageview", "click", "video_play", "share"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"]


def main() -> None:
    out, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(7)
    t0 = 1_793_000_000_000  # ms, 2026-10-26
    with open(out, "w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "event_id": f"e{i}",
                        "user_id": f"u{rng.randrange(200_000):06d}",
                        "ts": t0 + i * 10,
                        "event_type": rng.choice(TYPES),
                        "category": rng.choice(CATEGORIES),
                        "content_id": f"c{rng.randrange(50_000)}",
                        "url": f"https://news.example/a/{rng.randrange(50_000)}",
                        "user_agent": rng.choice(AGENTS),
                        "country": "DE",
                        "dwell_ms": rng.randrange(100, 120_000),
                    },
                    separators=(",", ":"),
                )
            )
            f.write("\n")


if __name__ == "__main__":
    main()
