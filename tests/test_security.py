"""The served app's file routes and upload limits, tested against the running server."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.server

SECRET_FILES = ["/etc/passwd", "{root}/app.py", "{root}/requirements.txt"]
TRAVERSALS = [
    "gradio_api/file={path}",
    "gradio_api/file=../../../../..{path}",
    "gradio_api/file=%2F..%2F..%2F..%2F..{enc}",
    "gradio_api/file=..%2F..%2F..%2F..%2F..{enc}",
    "gradio_api/file=%252e%252e%252f%252e%252e%252f..{path}",
    "gradio_api/file=/tmp/gradio/../../..{path}",
    "file={path}",
    "file=../../../..{path}",
    "gradio_api/file=..%5c..%5c..%5c..{path}",
]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("pattern", TRAVERSALS)
@pytest.mark.parametrize("secret", SECRET_FILES)
def test_file_routes_refuse_paths_outside_the_app(app_url, pattern, secret):
    from conftest import ROOT
    path = secret.format(root=ROOT)
    url = app_url + pattern.format(path=path, enc=path.replace("/", "%2F"))
    status, body = _get(url)
    assert status in (400, 403, 404, 405), (url, status)
    assert b"root:" not in body


def test_uploads_over_the_size_limit_are_refused(app_url):
    boundary = "----vl-demo-test"
    payload = b"\0" * (26 * 1024 * 1024)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + payload + \
        f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(app_url + "gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 413


def test_uploaded_file_names_cannot_escape_the_cache(app_url):
    import json
    boundary = "----vl-demo-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"../../../../tmp/escape.png\"\r\n\r\n").encode() + b"abc" + \
        f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(app_url + "gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        (stored,) = json.loads(resp.read())
    assert ".." not in stored and stored.endswith("/escape.png")
    assert stored != "/tmp/escape.png"
