"""The README's Python example runs as written, in an empty folder, and prints what the README
says it prints."""

import os
import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_example_runs_as_written(tmp_path):
    text = README.read_text(encoding="utf-8")
    section = text.split("## From Python, Kotlin, Swift, C# and Go", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = [line for line in example.splitlines() if line.strip()]
    assert len(code) <= 10, "the README promises a ten-line example"
    run = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "records=2, texts=1, skipped=1" in lines[0], lines[0]
    assert "0.0083 USD" in lines[0]
    # Quiet hours are on by default: outside 08:00-21:00 New York time the text is held.
    assert (
        "('1042', <RecordStatus.SENT" in lines[1] or "('1042', <RecordStatus.HELD" in lines[1]
    ), lines[1]
    assert "('S7', <RecordStatus.NOT_SENT" in lines[1] and "staff_not_permitted" in lines[1]
    assert (tmp_path / "sms.db").exists()
