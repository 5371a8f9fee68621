"""Where the tests find the repository's files."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLD = ROOT / "tests" / "gold" / "seeds.jsonl"
ISS_DOC = "000_47f2f9f2b89161a3.txt"
ROSCOSMOS_DOC = "003_293c8d6e3f4fbd2b.txt"
