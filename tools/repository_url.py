"""The repository's address is one setting, ``[project.urls] Repository`` in pyproject.toml; this
script writes it everywhere else it has to appear: ``python tools/repository_url.py`` (``make url``).

Those places cannot read pyproject.toml themselves: the notebooks' install cells (``pip install
"natmu-lite @ git+<address>"``), the Colab links and the ``git clone`` line of the book's pages, and
``repository: url`` in _config.yml, from which Jupyter Book makes its repository and launch (Colab)
buttons. ``assignments/build.py`` reads the setting through :func:`repository_url` when it generates
the assignment notebooks. ``--check`` changes nothing and lists every copy that differs from the
setting (exit status 1); tests/test_repository.py runs the same check.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GITHUB = "https://github.com/"
# A GitHub repository, owner/name, where it is written out: a name never ends with a dot (the end of a
# sentence); a ".git" ending is not part of the address (and is kept when a copy is rewritten).
REPO = r"(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]*[A-Za-z0-9_-])(?![A-Za-z0-9_-])"
COPIES = {
    "pip install": re.compile(r"git\+https://github\.com/" + REPO),
    "git clone": re.compile(r"git clone\b[^\n\"]*?https://github\.com/" + REPO),
    "Colab link": re.compile(r"colab\.research\.google\.com/github/" + REPO),
    "repository: url": re.compile(r"(?m)^repository:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*[\"']?https://github\.com/"
                                  + REPO),
}
SUFFIXES = (".ipynb", ".md", ".yml", ".yaml", ".py", ".txt", ".cfg")


def repository_url(root: Path = ROOT) -> str:
    """The setting: ``[project.urls] Repository`` of pyproject.toml, ``https://github.com/owner/name``."""
    text = (root / "pyproject.toml").read_text()
    try:
        import tomllib  # Python 3.11+
        url = tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository")
    except ImportError:  # Python 3.10: the one line is enough
        section = re.search(r"(?ms)^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text)
        found = section and re.search(r"(?m)^Repository\s*=\s*\"([^\"]*)\"", section.group(1))
        url = found.group(1) if found else None
    if not url:
        raise ValueError("pyproject.toml has no [project.urls] Repository")
    url = url.removesuffix("/").removesuffix(".git")
    if not re.fullmatch(GITHUB + REPO, url):
        raise ValueError(f"[project.urls] Repository must be {GITHUB}<owner>/<name> (Colab opens notebooks "
                         f"from GitHub only), got {url!r}")
    return url


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


def copies(root: Path = ROOT) -> list[tuple[Path, int, str, str]]:
    """Every copy of the address: (file, line, kind, the address written there)."""
    found = []
    for path in files(root):
        text = path.read_text(errors="ignore")
        for kind, pattern in COPIES.items():
            for m in pattern.finditer(text):
                repo = m["repo"].removesuffix(".git")
                found.append((path, text.count("\n", 0, m.start("repo")) + 1, kind, GITHUB + repo))
    return found


def differing(root: Path = ROOT) -> list[str]:
    """``file:line: kind holds <address>`` for each copy that is not the setting."""
    url = repository_url(root)
    return [f"{p.relative_to(root)}:{line}: {kind} holds {found}, not {url}"
            for p, line, kind, found in copies(root) if found != url]


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite every copy to the setting; returns the files changed."""
    slug = repository_url(root).removeprefix(GITHUB)
    changed = []
    for path in files(root):
        text = new = path.read_text()
        for pattern in COPIES.values():
            new = pattern.sub(lambda m: m.group(0)[: m.start("repo") - m.start()] + slug
                              + (".git" if m["repo"].endswith(".git") else ""), new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a copy differs")
    args = parser.parse_args()
    if args.check:
        wrong = differing()
        print("\n".join(wrong) or f"every copy is {repository_url()}")
        sys.exit(1 if wrong else 0)
    for path in write():
        print(f"updated {path.relative_to(ROOT)}")
    print(f"every copy is {repository_url()}")
