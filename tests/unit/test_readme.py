"""The README's Python snippet works as printed."""

import contextlib
import io
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_readme_python_snippet_protects_restores_and_deletes():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102
    printed = out.getvalue()
    assert "['10.0.0.0/24']" in printed
    assert re.match(r"^[0-9a-f-]{36} ", printed)


def test_readme_names_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert ".venv/bin/manila-protector-demo" in readme
    assert ".venv/bin/pytest" in readme
    assert ci.strip().splitlines()[-1] == ".venv/bin/pytest"
