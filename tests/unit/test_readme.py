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


def test_readme_layout_names_what_is_in_the_tree():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    named = [line.split()[0] for line in layout.splitlines() if line and not line[0].isspace()]
    for path in named:
        assert (ROOT / path.rstrip("/")).exists(), f"README's layout names {path}, not in the tree"
    tops = {p.name + "/" for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
            and p.name not in {"build", "dist"} and not p.name.endswith(".egg-info")}
    covered = {path.split("/", 1)[0] + "/" for path in named}
    assert tops - {"manila_protector/"} <= covered, tops - covered
    package = {p.name + ("/" if p.is_dir() else "") for p in (ROOT / "manila_protector").iterdir()
               if not p.name.startswith(("_", ".")) and p.name != "__pycache__"}
    assert {"manila_protector/" + name for name in package} <= set(named), (
        sorted({"manila_protector/" + name for name in package} - set(named)))
