"""The README's claims about what survives a crash are the reliability page's, word for word."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _table(path: Path) -> str:
    text = path.read_text()
    start, end = text.index("<!-- survives-table -->"), text.index("<!-- /survives-table -->")
    return text[start:end]


def test_readme_survival_table_matches_docs_reliability():
    table = _table(ROOT / "docs" / "reliability.md")
    assert table.count("\n|") >= 10  # a header, a rule and a row per case
    assert _table(ROOT / "README.md") == table
