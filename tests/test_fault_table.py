"""bench/fault_table.py on a few of its quick kinds: the script runs, and these still behave as
docs/reliability.md says (410 stops, Retry-After obeyed, a bomb capped, a skipped weekend
pushes the next fetch, a failed source keeps its papers, the metadata address refused)."""

from __future__ import annotations

import pytest

from bench import fault_table

QUICK = ["410 after", "Retry-After: 7200", "gzip bomb", "skipDays", "good feed, then garbage", "169.254"]


def test_quick_kinds_behave_as_the_fault_table_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert fault_table.main(["--only", *QUICK]) == 0
    table = capsys.readouterr().out
    assert "| stopped (410) |" in table and "| 2h (Retry-After) |" in table and "| 1d (hint) |" in table
    assert table.count("| yes:") == len(QUICK)
