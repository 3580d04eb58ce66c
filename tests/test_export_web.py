"""adain.export.web without a browser: where onnxruntime-web is looked for, the one line when it is
missing (nothing written), and what a page folder holds; adain.export.serve's headers, MIME types,
Ctrl-C and bad folders."""

from __future__ import annotations

import urllib.request

import pytest

from adain.errors import AdainError
from adain.export import serve, web
from static_site import ORT_WEB, serve_isolated


def test_missing_onnxruntime_web_is_one_line(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("PATH", "")  # no npm: no global root to search
  with pytest.raises(AdainError) as e:
    web.find_ort_web(None)
  assert str(e.value) == (
      "onnxruntime-web not found (looked in node_modules/onnxruntime-web); get it with "
      "`npm install onnxruntime-web@1.30` (in this folder), or pass --ort-web PATH to the package "
      "folder that command leaves (node_modules/onnxruntime-web)")
  with pytest.raises(AdainError, match=r"^nope: not an onnxruntime-web package folder \(does not exist\); "):
    web.find_ort_web("nope")
  (tmp_path / "empty").mkdir()
  with pytest.raises(AdainError, match=r"empty: not an onnxruntime-web package folder \(has no dist/ort"):
    web.find_ort_web(str(tmp_path / "empty"))


def test_export_with_web_but_no_onnxruntime_web_writes_nothing(tmp_path, monkeypatch, capsys, weights):
  from adain.commands.export import main

  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("PATH", "")
  vgg, decoder = weights
  out = tmp_path / "site"
  assert main(["--vgg", str(vgg), "--decoder", str(decoder), "--output", str(out), "--web"]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: onnxruntime-web not found") and err.count("\n") == 1
  assert not out.exists()


@pytest.mark.browser  # npm's onnxruntime-web
def test_page_folder_has_the_page_and_only_the_runtime_files_it_loads(tmp_path, monkeypatch):
  assert ORT_WEB.is_dir(), "make test installs onnxruntime-web (npm)"
  monkeypatch.chdir(ORT_WEB.parents[1])  # found in ./node_modules, as a user who ran npm install here
  web.write_page(tmp_path, web.find_ort_web(None))
  files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
  assert files == sorted([*web.PAGE_FILES, *web.DEMO_FILES.values(), *(f"ort/{n}" for n in web.ORT_FILES)])
  wasm = web.ORT_FILES[2]
  assert (tmp_path / "ort" / wasm).read_bytes() == (ORT_WEB / "dist" / wasm).read_bytes()
  html = (tmp_path / "index.html").read_text()
  for element in ("content", "style", "alpha", "result", "status", "download", "live", "fps"):
    assert f'id="{element}"' in html
  assert "http" not in html + (tmp_path / "app.js").read_text()  # no address but the page's own


def test_serve_sends_isolation_headers_and_the_pages_types(tmp_path):
  """COOP and COEP on every file (the page then gets threads), the types a module, a wasm
  runtime and a model need; Ctrl-C then stops it with exit status 0 (serve_isolated checks)."""
  files = {"index.html": "text/html", "app.js": "text/javascript", "ort/ort.bundle.min.mjs": "text/javascript",
           "ort/ort-wasm-simd-threaded.jsep.wasm": "application/wasm", "encoder.onnx": "application/octet-stream"}
  for name in files:
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_bytes(b"x")
  with serve_isolated(tmp_path) as url:
    for name, mime in files.items():
      with urllib.request.urlopen(url + name) as answer:
        assert answer.headers["Content-Type"] == mime, name
        assert answer.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert answer.headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_serve_refuses_a_folder_without_a_page_in_one_line(tmp_path, capsys):
  for folder, problem in [(tmp_path / "nope", "not a folder"),
                          (tmp_path, "no index.html (write the page with python -m adain.export --output DIR --web)")]:
    with pytest.raises(SystemExit) as e:
      serve.main([str(folder)])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"python -m adain.export.serve: error: {folder}: {problem}\n"
