"""The documentation: the site builds with --strict, the README stays short and its links hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))


def test_site_builds_strict(tmp_path):
  """mkdocs build --strict: a broken link, anchor, nav entry or `::: module` reference fails."""
  pytest.importorskip("mkdocs")
  pytest.importorskip("mkdocstrings_handlers.python")
  site = tmp_path / "site"
  run = subprocess.run(
    [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
    cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stdout + run.stderr
  assert (site / "index.html").is_file()
  api = (site / "api" / "index.html").read_text(encoding="utf-8")
  for name in ("Stylizer", "StyleCode", "AdaIN"):
    assert name in api


def test_readme_is_short():
  lines = README.read_text(encoding="utf-8").splitlines()
  assert len(lines) <= 250, f"README.md has {len(lines)} lines; the rest belongs in docs/"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_outside_folders_or_sessions(path):
  """The docs speak of the repository as a clone has it, not of where or when it was worked on."""
  text = path.read_text(encoding="utf-8")
  assert "../shared" not in text
  # "session" as a word; API names such as onnxruntime's InferenceSession are fine.
  found = re.findall(r"(?i)\bsessions?\b", text)
  assert not found, f"{path.name} speaks of {found}"


def test_readme_relative_links_exist():
  text = README.read_text(encoding="utf-8")
  targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
  relative = [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]
  assert relative, "the README links to its docs pages"
  missing = [t for t in relative if not (ROOT / t.split("#")[0]).exists()]
  assert not missing, f"README.md links to missing files: {missing}"
