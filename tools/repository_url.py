"""The repository's address is one setting, ``[project.urls] Repository`` in pyproject.toml; this
script writes it everywhere else it has to appear: ``python tools/repository_url.py`` (``make url``).

Those places cannot read pyproject.toml themselves: the notebooks' install cells, the Colab links and
the ``git clone`` line of the book's pages, and ``repository: url`` and the Colab launch button of
_config.yml, from which Jupyter Book makes its repository and launch buttons. ``assignments/build.py``
writes :func:`install_cell` into the assignment notebooks it generates.

Until the book is published the setting is :data:`PLACEHOLDER`, an address on the reserved top-level
domain ``.invalid`` (RFC 2606), which never resolves, and so is every copy: no install cell, Colab link
or clone line can fetch what someone else might publish under a made-up name. While it is set, the
install cell stops with a message that says what to do instead of installing, ``make url`` refuses
(writing the real address is its job; ``--keep-placeholder`` rewrites the copies with the placeholder,
e.g. after a version change) and ``--publish-check`` (the Pages workflow runs it before building) fails.
Once the real address is set, the install cells install the tag of the package's version
(``v<version>``, which must be pushed), and ``--publish-check`` also fails while that tag is missing or
while the package differs from the tagged one (a reader would install other code than the book ran).

``--check`` changes nothing and lists every copy that differs from the setting (exit status 1);
tests/test_repository.py runs the same check.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GITHUB = "https://github.com"
PLACEHOLDER = "https://github.com.invalid/natmu-lite/natmu-lite"  # .invalid: reserved, never resolves
# A GitHub repository, owner/name, where it is written out: a name never ends with a dot (the end of a
# sentence); a ".git" ending is not part of the address (and is kept when a copy is rewritten). A copy of
# the placeholder carries ".invalid" on its host (github.com or Colab's).
REPO = r"(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]*[A-Za-z0-9_-])(?![A-Za-z0-9_-])"
INVALID = r"(?P<invalid>(?:\.invalid)?)"
COPIES = {
    "pip install": re.compile(r"git\+https://github\.com" + INVALID + "/" + REPO + r"(?:@(?P<ref>[\w.-]+))?"),
    "git clone": re.compile(r"git clone\b[^\n\"]*?https://github\.com" + INVALID + "/" + REPO),
    "Colab link": re.compile(r"colab\.research\.google\.com" + INVALID + "/github/" + REPO),
    "repository: url": re.compile(r"(?m)^repository:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*[\"']?https://github\.com"
                                  + INVALID + "/" + REPO),
    "Colab button": re.compile(r"(?m)^launch_buttons:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+colab_url:[ \t]*[\"']?"
                               r"https://colab\.research\.google\.com" + INVALID + r"(?![\w.])"),
}
INSTALL = "install cell"  # the notebooks' first code cell, written whole by install_cell()
INSTALL_MARKS = ("# Install natmu-lite", "# Install the package")  # its first line (the second: older cells)
SUFFIXES = (".ipynb", ".md", ".yml", ".yaml", ".py", ".txt", ".cfg")


def _pyproject(root: Path) -> dict:
    text = (root / "pyproject.toml").read_text()
    try:
        import tomllib  # Python 3.11+
        project = tomllib.loads(text).get("project", {})
        return {"version": project.get("version"), "url": project.get("urls", {}).get("Repository")}
    except ImportError:  # Python 3.10: the two lines are enough
        section = re.search(r"(?ms)^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text)
        found = section and re.search(r"(?m)^Repository\s*=\s*\"([^\"]*)\"", section.group(1))
        version = re.search(r"(?m)^version\s*=\s*\"([^\"]*)\"", text)
        return {"version": version and version.group(1), "url": found.group(1) if found else None}


def repository_url(root: Path = ROOT) -> str:
    """The setting: ``[project.urls] Repository`` of pyproject.toml, ``https://github.com/owner/name``
    (or the placeholder)."""
    url = _pyproject(root)["url"]
    if not url:
        raise ValueError("pyproject.toml has no [project.urls] Repository")
    url = url.removesuffix("/").removesuffix(".git")
    if not re.fullmatch(r"https://github\.com" + INVALID + "/" + REPO, url):
        raise ValueError(f"[project.urls] Repository must be {GITHUB}/<owner>/<name> (Colab opens notebooks "
                         f"from GitHub only), or the placeholder {PLACEHOLDER}; got {url!r}")
    return url


def is_placeholder(url: str) -> bool:
    return url.startswith(GITHUB + ".invalid/")


def version(root: Path = ROOT) -> str:
    """The package's version (pyproject.toml); the install cells install its tag, ``v<version>``."""
    found = _pyproject(root)["version"]
    if not found:
        raise ValueError("pyproject.toml has no [project] version")
    return found


def install_cell(url: str, version: str) -> str:
    """The first code cell of every notebook: installs the package where it is missing (Colab), the
    tagged version, then prints where the notebook runs. While ``url`` is the placeholder it installs
    nothing, and its first line says in one line what to do instead."""
    first = ("# Install natmu-lite first: not published yet (clone + README's `make`, or a wheel)"
             if is_placeholder(url) else
             "# Install natmu-lite where it is missing (on Colab: under a minute), then say\n"
             "# where this notebook runs.")
    head = (first + "\n"
            "try:\n"
            "    import natmu_lite  # noqa: F401\n"
            "except ImportError:\n")
    if is_placeholder(url):
        body = ("    raise ModuleNotFoundError(\n"
                "        \"natmu-lite is not installed, and this notebook cannot install it yet: \"\n"
                "        \"the repository is not published; its address is still the placeholder \"\n"
                f"        \"{url}. Install the package \"\n"
                "        \"first (pip install path/to/a/clone, or a wheel of it), then run this \"\n"
                "        \"notebook again.\") from None\n")
    else:
        body = f"    %pip install -q \"natmu-lite @ git+{url}@v{version}\"\n"
    return head + body + "from natmu_lite.notebook import where\n\nprint(where())"


def files(root: Path = ROOT) -> list[Path]:
    """The repository's text files that may hold a copy (where git is there: those it tracks or does
    not ignore)."""
    try:
        names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root,
                               capture_output=True, text=True, check=True)
        paths = [root / n for n in names.stdout.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        skip = {"_build", ".git", "data", "build"}
        paths = [p for p in root.rglob("*") if not skip & set(p.relative_to(root).parts)]
    return sorted(p for p in paths if p.suffix in SUFFIXES and p.is_file() and p.name != "pyproject.toml")


def install_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"
            and "".join(c.get("source", "")).startswith(INSTALL_MARKS)]


def _as_setting(m: re.Match, url: str, version: str) -> str:
    """One copy (a match of a COPIES pattern) as the setting writes it."""
    new = {"invalid": ".invalid" if is_placeholder(url) else "", "ref": f"v{version}",
           "repo": url.split("/", 3)[3] + (".git" if (m.groupdict().get("repo") or "").endswith(".git") else "")}
    out = m.group(0)
    for name in sorted((g for g in m.re.groupindex if m.start(g) >= 0), key=m.start, reverse=True):
        out = out[: m.start(name) - m.start()] + new[name] + out[m.end(name) - m.start():]
    return out


def _copies_in(path: Path, url: str, version: str) -> list[tuple[int, str, str, bool]]:
    """(line, kind, the address written there, whether it is the setting's) of each copy in one file;
    the Colab button's address is its host."""
    text, found = path.read_text(errors="ignore"), []
    for kind, pattern in COPIES.items():
        for m in pattern.finditer(text):
            if "repo" in pattern.groupindex:
                at, address = m.start("repo"), f"{GITHUB}{m['invalid']}/{m['repo'].removesuffix('.git')}"
            else:
                at, address = m.start(), m.group(0).split("colab_url:")[-1].strip(" \t\"'")
            found.append((text.count("\n", 0, at) + 1, kind, address, _as_setting(m, url, version) == m.group(0)))
    if path.suffix == ".ipynb":
        for cell in install_cells(json.loads(text)):
            source = "".join(cell["source"])
            address = re.search(r"https://github\.com(?:\.invalid)?/" + REPO, source)
            found.append((text.count("\n", 0, text.find(json.dumps(source.splitlines(True)[0]))) + 1, INSTALL,
                           address.group(0) if address else "no address", source == install_cell(url, version)))
    return found


def copies(root: Path = ROOT) -> list[tuple[Path, int, str, str]]:
    """Every copy of the address: (file, line, kind, the address written there)."""
    url, v = repository_url(root), version(root)
    return [(path, line, kind, address) for path in files(root) for line, kind, address, _ in _copies_in(path, url, v)]


def differing(root: Path = ROOT) -> list[str]:
    """``file:line: kind holds <address>`` for each copy that is not the setting's."""
    url, v = repository_url(root), version(root)
    return [f"{path.relative_to(root)}:{line}: {kind} holds {address}, not {url}"
            + (f" (or is not the install cell of version {v})" if kind == INSTALL else "")
            for path in files(root) for line, kind, address, ok in _copies_in(path, url, v) if not ok]


def buttons(text: str, url: str) -> str:
    """_config.yml's repository and Colab buttons shown once the book is published, hidden while the
    address is the placeholder (a button must not lead nowhere): ``use_repository_button`` follows the
    setting, and the ``colab_url`` line is commented out."""
    published = not is_placeholder(url)
    text = re.sub(r"(?m)^([ \t]+use_repository_button:).*$", rf"\1 {'true' if published else 'false'}", text)
    return re.sub(r"(?m)^([ \t]+)(?:# )?colab_url:", r"\1colab_url:" if published else r"\1# colab_url:", text)


def rewritten(path: Path, url: str, version: str) -> str:
    """The file with every copy made the setting's (its text as it is where it holds none), and, in
    _config.yml, the buttons shown or hidden (:func:`buttons`)."""
    text = path.read_text()
    toggle = path.name == "_config.yml"
    if toggle and not is_placeholder(url):
        text = buttons(text, url)
    for pattern in COPIES.values():
        text = pattern.sub(lambda m: _as_setting(m, url, version), text)
    if toggle and is_placeholder(url):
        text = buttons(text, url)
    if path.suffix == ".ipynb":
        notebook, cell = json.loads(text), install_cell(url, version)
        changed = [c for c in install_cells(notebook) if "".join(c["source"]) != cell]
        for c in changed:
            c["source"] = cell.splitlines(keepends=True)
        if changed:  # as Jupyter writes notebooks
            text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    return text


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite every copy to the setting; returns the files changed."""
    url, v = repository_url(root), version(root)
    changed = []
    for path in files(root):
        new = rewritten(path, url, v)
        if new != path.read_text(errors="ignore"):
            path.write_text(new)
            changed.append(path)
    return changed


def publish_problems(root: Path = ROOT) -> list[str]:
    """Why this checkout must not be published yet (empty: it may): the placeholder, a copy that is not
    the setting, or an install cell that would install other code than the book ran (its tag missing,
    or the package changed since the tag)."""
    url, tag = repository_url(root), f"v{version(root)}"
    if is_placeholder(url):
        return [f"the repository's address is still the placeholder {url}: set the real one, {GITHUB}/<owner>/"
                "<name>, as [project.urls] Repository in pyproject.toml, then run `make url`"]
    problems = [f"{line} (run `make url`)" for line in differing(root)]

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    if git("rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}").returncode:
        problems.append(f"no tag {tag} here, which the install cells install: `git tag {tag} && git push origin "
                        f"{tag}` (a CI checkout needs fetch-depth: 0 to see tags)")
    elif git("diff", "--quiet", tag, "HEAD", "--", "natmu_lite", "results/*.json", "pyproject.toml").returncode:
        problems.append(f"the package differs from tag {tag}, which the install cells install: raise the version "
                        "in pyproject.toml and natmu_lite/__init__.py, run `make url`, commit, and tag that commit")
    return problems


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a copy differs")
    parser.add_argument("--publish-check", action="store_true",
                        help="change nothing; exit 1 unless this checkout may be published (see above)")
    parser.add_argument("--keep-placeholder", action="store_true",
                        help="rewrite the copies even while the setting is the placeholder")
    args = parser.parse_args()
    if args.check or args.publish_check:
        wrong = publish_problems() if args.publish_check else differing()
        print("\n".join(wrong) or f"every copy is {repository_url()}" + (", ready to publish" * args.publish_check))
        sys.exit(1 if wrong else 0)
    if is_placeholder(repository_url()) and not args.keep_placeholder:
        sys.exit(f"pyproject.toml's [project.urls] Repository is still the placeholder {repository_url()}: set "
                 f"the repository's real address there ({GITHUB}/<owner>/<name>) and run `make url` again "
                 "(--keep-placeholder rewrites the copies with the placeholder)")
    for path in write():
        print(f"updated {path.relative_to(ROOT)}")
    print(f"every copy is {repository_url()}")
