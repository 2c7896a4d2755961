"""The repository stands on its own: nothing in it points to documents a person who clones it does
not have (the team's private notes) or to numbers of the team's task tracker, and its own address is
one setting (pyproject.toml's ``[project.urls] Repository``) that every copy agrees with."""

import contextlib
import importlib.util
import io
import itertools
import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Built from fragments so that this file does not contain, and so match, the phrases it looks for:
# the folder beside the checkout, the team's design and specification files, and tracker numbers.
FOLDER, SPEC, TRACKER = "sha" + "red", "sp" + "ec", "iss" + "ue"
OUTSIDE = re.compile(rf"\.\./{FOLDER}|{FOLDER}/(paper|reference)|DESIGN\.md|official-{SPEC}|anchors-|"
                     rf"\b{SPEC} sections?\b|\b{TRACKER} (#?\d+|note)\b|the {TRACKER}'s", re.IGNORECASE)


def tracked_text_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / n for n in names.splitlines() if not n.endswith((".db", ".png", ".gz"))]


def test_no_file_points_outside_the_repository():
    hits = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve() or not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not hits, "references to documents outside the repository:\n" + "\n".join(hits)


def url_tool():
    """tools/repository_url.py, which reads the one setting (pyproject.toml's ``[project.urls]
    Repository``) and finds or rewrites its copies."""
    spec = importlib.util.spec_from_file_location("repository_url", ROOT / "tools" / "repository_url.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebooks() -> list[Path]:
    return [*sorted(ROOT.glob("notebooks/**/*.ipynb")), *sorted(ROOT.glob("assignments/solutions/*.ipynb")),
            *sorted(ROOT.glob("natmu_lite/classroom/notebooks/*.ipynb"))]


def test_every_copy_of_the_repository_url_is_the_setting():
    """Notebooks' install cells, Colab links, the clone line and _config.yml all hold the address of
    pyproject.toml; `make url` rewrites them after the setting changes."""
    tool = url_tool()
    url = tool.repository_url()
    assert url.startswith(("https://github.com/", tool.PLACEHOLDER))
    wrong = tool.differing()
    assert not wrong, "copies of the repository URL that are not the setting (run `make url`):\n" + "\n".join(wrong)
    places = {(p.relative_to(ROOT).as_posix(), kind) for p, _, kind, _ in tool.copies()}
    published = not tool.is_placeholder(url)
    colab = {("_config.yml", "Colab button")} if published else set()
    expected = {("_config.yml", "repository: url"), *colab} | {
        (n.relative_to(ROOT).as_posix(), tool.INSTALL) for n in notebooks()}
    assert expected <= places, f"copies not found (has their wording changed?): {sorted(expected - places)}"
    kinds = {*tool.COPIES, tool.INSTALL} - ({"Colab button"} if not published else set())
    assert {kind for _, kind in places} == kinds, "some kind of copy is no longer found"


def test_while_the_placeholder_is_set_the_book_shows_no_button_that_leads_nowhere():
    """The repository and Colab buttons of _config.yml lead to the placeholder's address: hidden until
    `make url` writes the real address (which shows them)."""
    tool = url_tool()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    published = not tool.is_placeholder(tool.repository_url())
    assert config["html"]["use_repository_button"] is published
    assert ("colab_url" in config["launch_buttons"]) is published


def test_no_copy_can_reach_an_address_nobody_owns():
    """While the setting is the placeholder, every copy is on the reserved domain .invalid (it never
    resolves), and no file names the made-up GitHub address the placeholder once was, where whoever
    registers the name would serve their code to every reader."""
    tool = url_tool()
    if not tool.is_placeholder(tool.repository_url()):
        pytest.skip("the repository's address is set")
    assert tool.PLACEHOLDER.split("/")[2].endswith(".invalid")
    assert all(".invalid" in address for *_, address in tool.copies())
    squat = re.compile(r"(github\.com|colab\.research\.google\.com)/(github/)?natmu-lite/")
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in tracked_text_files() if p.exists() and p != Path(__file__).resolve()
            for n, line in enumerate(p.read_text(errors="ignore").splitlines(), 1) if squat.search(line)]
    assert not hits, f"an address nobody owns: {hits}"


def copy_of_the_copies(tool, tmp_path: Path) -> set[Path]:
    """The files that hold a copy, and pyproject.toml, under tmp_path; returns the originals."""
    files = {p for p, *_ in tool.copies()} | {ROOT / "pyproject.toml"}
    for path in files:
        (tmp_path / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.relative_to(ROOT)).write_text(path.read_text())
    return files


def set_address(root: Path, old: str, new: str) -> None:
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'Repository = "{old}"', f'Repository = "{new}"'))


def test_make_url_rewrites_every_copy_and_back(tmp_path):
    """A real address reaches every copy, and the install cells install that repository's tag of the
    package's version; setting the old address back restores every file exactly."""
    tool = url_tool()
    files = copy_of_the_copies(tool, tmp_path)
    old, new = tool.repository_url(), "https://github.com/someone-else/their-fork"
    set_address(tmp_path, old, new)
    assert tool.repository_url(tmp_path) == new and tool.differing(tmp_path)
    changed = tool.write(tmp_path)
    assert set(changed) == {tmp_path / p.relative_to(ROOT) for p in files if p.name != "pyproject.toml"}
    assert not tool.differing(tmp_path)
    assert all(u == new for _, _, kind, u in tool.copies(tmp_path) if kind != "Colab button")
    pin = f'%pip install -q "natmu-lite @ git+{new}@v{tool.version()}"'
    for notebook in notebooks():
        cells = tool.install_cells(json.loads((tmp_path / notebook.relative_to(ROOT)).read_text()))
        assert len(cells) == 1 and pin in "".join(cells[0]["source"]), notebook
    set_address(tmp_path, new, old)
    tool.write(tmp_path)
    for path in files:
        assert (tmp_path / path.relative_to(ROOT)).read_text() == path.read_text(), path


def run_install_cell(source: str, monkeypatch, installs: bool = False) -> tuple[list[str], str]:
    """Run an install cell as IPython does, where natmu_lite is not installed: (the %pip lines it ran, what
    it printed). ``installs``: %pip makes the package importable, as on Colab."""
    from IPython.core.inputtransformer2 import TransformerManager

    monkeypatch.setitem(sys.modules, "natmu_lite", None)  # `import natmu_lite` fails
    ran = []

    def magic(name, line, *args):
        ran.append(f"%{name} {line}")
        if installs:
            monkeypatch.delitem(sys.modules, "natmu_lite")

    shell = types.SimpleNamespace(run_line_magic=magic)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(TransformerManager().transform_cell(source), {"get_ipython": lambda: shell})
    return ran, printed.getvalue()


def test_while_the_placeholder_is_set_the_install_cell_says_what_to_do(monkeypatch):
    tool = url_tool()
    with pytest.raises(ModuleNotFoundError) as e:
        run_install_cell(tool.install_cell(tool.PLACEHOLDER, "0.1.0"), monkeypatch)
    assert e.value.args[0].startswith("natmu-lite is not installed, and this notebook cannot install it yet: the "
                                      f"repository is not published; its address is still the placeholder "
                                      f"{tool.PLACEHOLDER}. Install the package first"), e.value


def test_once_published_the_install_cell_installs_the_tag_and_says_where_it_runs(monkeypatch):
    tool = url_tool()
    fork = "https://github.com/someone/fork"
    ran, printed = run_install_cell(tool.install_cell(fork, "1.2.3"), monkeypatch, installs=True)
    assert ran == [f'%pip install -q "natmu-lite @ git+{fork}@v1.2.3"']
    assert printed.startswith("natmu-lite ") and " running on " in printed and " training in " in printed


def test_publishing_refuses_the_placeholder_and_code_the_install_cells_would_not_install(tmp_path):
    """`make url` and the Pages workflow's check refuse while the address is the placeholder; once it is
    set, the check also wants the tag the install cells install, and the package unchanged since it."""
    tool = url_tool()
    copy_of_the_copies(tool, tmp_path)
    (tmp_path / "tools").mkdir()
    shutil.copyfile(ROOT / "tools" / "repository_url.py", tmp_path / "tools" / "repository_url.py")
    set_address(tmp_path, tool.repository_url(), tool.PLACEHOLDER)
    tool.write(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    make_url = subprocess.run([sys.executable, "tools/repository_url.py"], cwd=tmp_path, capture_output=True, text=True)
    assert make_url.returncode == 1 and "is still the placeholder" in make_url.stderr, make_url
    assert {p: p.read_bytes() for p in before} == before, "make url changed files while refusing"
    assert "still the placeholder" in tool.publish_problems(tmp_path)[0]

    set_address(tmp_path, tool.PLACEHOLDER, "https://github.com/someone/fork")
    assert any("run `make url`" in p for p in tool.publish_problems(tmp_path))
    tool.write(tmp_path)
    (tmp_path / "natmu_lite" / "__init__.py").write_text("")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "book"]):
        subprocess.run([*git, *command], cwd=tmp_path, check=True, capture_output=True)
    tag = f"v{tool.version(tmp_path)}"
    assert [f"no tag {tag} here" in p for p in tool.publish_problems(tmp_path)] == [True]
    subprocess.run([*git, "tag", tag], cwd=tmp_path, check=True)
    assert tool.publish_problems(tmp_path) == []
    (tmp_path / "natmu_lite" / "__init__.py").write_text("changed = True\n")
    subprocess.run([*git, "commit", "-qam", "package changed"], cwd=tmp_path, check=True)
    assert [f"the package differs from tag {tag}" in p for p in tool.publish_problems(tmp_path)] == [True]


def words_table(path: Path) -> list[str]:
    """The rows of the table of words (the lines of the Markdown table that starts with ``| word |``)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| word |"))
    return list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))


def test_the_words_are_one_table_for_contributors_and_readers():
    """CONTRIBUTING.md and the glossary give the same words with the same meanings, and each word once."""
    table = words_table(ROOT / "CONTRIBUTING.md")
    assert table == words_table(ROOT / "book" / "glossary.md")
    words = [row.split("|")[1].strip() for row in table[2:]]
    assert len(words) == len(set(words)) > 10


def test_retired_words_are_gone_from_the_package():
    """A word's retired meaning is left only where the old spelling is still accepted (the command's
    hidden options, and the reader of audits saved before): never in code, help or docstrings."""
    retired = re.compile(r"\bpresets?\b|target[-_]fraction|[Ss]etting\.targets\b|per_target|make_scenario_split\(p\.")
    allowed = {"natmu_lite/cli/options.py": ("old_spelling(",), "natmu_lite/cli/tuning.py": ("old_spelling(",),
               "natmu_lite/cli/audit.py": ("old_spelling(",), "natmu_lite/cli/info.py": ("add_parser(\"presets\")",),
               "natmu_lite/cli/__init__.py": ("!= \"presets\"",),
               "natmu_lite/results.py": ("\"targets\"", "\"per_target\"", "\"target_fraction\"")}
    hits = []
    for path in sorted((ROOT / "natmu_lite").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if retired.search(line) and not any(a in line for a in allowed.get(name, ())):
                hits.append(f"{name}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)
