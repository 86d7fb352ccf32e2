"""The download path against a local HTTP server on 127.0.0.1 serving copies of the real files.

The server's folder is laid out as ``<host>/<path>`` of each origin URL, the tree CAPCSE_DATA_MIRROR expects.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

import pytest

from capcse.data import REGISTRY, load_sts, load_transfer, locate, read_text_corpus, resolve_dataset
from capcse.data.download import DownloadError, VerificationError, download_dataset, extract, install_source, mirror_url
from capcse.data.registry import DatasetSpec, Layout, RemoteFile, Source
from capcse.errors import ChecksumError, DataNotFoundError

pytestmark = pytest.mark.usefixtures("isolated_data_env")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):  # record instead of printing
        self.server.requests.append(self.path)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server over tmp_path/www; CAPCSE_DATA_MIRROR points at it and downloads are allowed."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("CAPCSE_DATA_MIRROR", base)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    server.root = root
    yield server
    server.shutdown()
    server.server_close()


def _serve(server, url: str, data: bytes) -> None:
    parts = urlsplit(url)
    dest = server.root / parts.netloc / parts.path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def _cache_entries(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []


def test_mirror_url():
    assert mirror_url("https://raw.githubusercontent.com/a/b/c.tsv", "http://127.0.0.1:8000/m/") == \
        "http://127.0.0.1:8000/m/raw.githubusercontent.com/a/b/c.tsv"
    assert mirror_url("https://x.org/f", "") == "https://x.org/f"


def test_download_korsts_checksummed(mirror, data_dir, isolated_data_env):
    """Success: the real KorSTS files served locally pass their pinned sha256 and counts, land in the cache."""
    source = REGISTRY["korsts"].layouts[0].sources[0]
    for rf in source.files:
        _serve(mirror, rf.url, (data_dir / "korsts" / rf.dest).read_bytes())
    loc = locate("korsts")
    assert loc.downloaded and loc.path == isolated_data_env / "data" / "korsts"
    assert len(load_sts("korsts", "dev")["korsts"]) == 1500
    assert not any(".staging" in e for e in _cache_entries(isolated_data_env))
    n = len(mirror.requests)
    assert n == 3 and not locate("korsts").downloaded  # found in the cache now; no new request
    assert len(mirror.requests) == n


def test_checksum_mismatch_rejected(mirror, data_dir, isolated_data_env):
    source = REGISTRY["korsts"].layouts[0].sources[0]
    for rf in source.files:
        data = (data_dir / "korsts" / rf.dest).read_bytes()
        _serve(mirror, rf.url, data.replace(b"\t5.000\t", b"\t4.000\t", 1) if rf.dest == "sts-dev.tsv" else data)
    with pytest.raises(DataNotFoundError) as exc:
        resolve_dataset("korsts")
    msg = str(exc.value)
    assert "korsts" in msg and "sts-dev.tsv: sha256" in msg and "does not match" in msg
    assert "Paths tried:" in msg and str(isolated_data_env / "data" / "korsts") in msg
    assert _cache_entries(isolated_data_env / "data") == []  # nothing left behind
    with pytest.raises(ChecksumError, match="sts-dev.tsv: sha256 .* does not match"):
        download_dataset("korsts")
    assert _cache_entries(isolated_data_env / "data") == []


def test_404_is_a_clear_error(mirror, isolated_data_env):
    with pytest.raises(DataNotFoundError) as exc:
        resolve_dataset("kornli-xnli")
    msg = str(exc.value)
    assert "data set kornli-xnli not found" in msg and "HTTP 404" in msg and "xnli.dev.ko.tsv" in msg
    assert "--data-dir" in msg and "CAPCSE_DATA" in msg and "raw.githubusercontent.com/kakaobrain" in msg
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1.*xnli\.dev\.ko\.tsv: HTTP 404"):
        download_dataset("kornli-xnli")
    assert _cache_entries(isolated_data_env / "data") == []


def test_sts12_zip_fallback(mirror, data_dir, isolated_data_env):
    """The pinned per-file copy is missing (404): the original STS 2012 zip (SentEval's URL) is used instead,
    its data folder found inside the archive and its 3108 pairs verified."""
    spec = REGISTRY["sts12"]
    raw = spec.layouts_for("raw")[0]
    zip_url = raw.sources[1].files[0].url
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in (data_dir / "sts_raw/STS2012-en-test-gold").iterdir():
            zf.write(f, f"test-gold/{f.name}")
    _serve(mirror, zip_url, buf.getvalue())
    loc = locate("sts12", variant="raw")
    assert loc.downloaded and loc.path == isolated_data_env / "data/sts_raw/STS2012-en-test-gold"
    assert (loc.path / "00-readme.txt").is_file()
    data = load_sts("sts12", variant="raw")
    assert sum(len(d) for d in data.values()) == 3108
    ref = load_sts("sts12", variant="raw", data_dir=data_dir)
    assert data["MSRpar"].sentences1 == ref["MSRpar"].sentences1
    assert any("MSRpar" in r for r in mirror.requests) and any(r.endswith("STS2012-en-test.zip") for r in mirror.requests)


def test_senteval_tar_reused_for_several_tasks(mirror, data_dir, isolated_data_env):
    """SimCSE's senteval.tar (here a copy with the same layout) is fetched once and serves several tasks; SST2
    is taken from SST/binary although SST/fine holds the same file names."""
    tar_url = REGISTRY["mr"].layouts[0].sources[1].files[0].url
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for folder in ("MR", "TREC", "SST/fine", "SST/binary"):
            for f in sorted((data_dir / "downstream" / folder).iterdir()):
                tf.add(f, f"downstream/{folder}/{f.name}")
    _serve(mirror, tar_url, buf.getvalue())
    assert len(load_transfer("mr").splits["all"][0]) == 10662
    assert len(load_transfer("trec").splits["train"][0]) == 5452
    assert len(load_transfer("sst2").splits["train"][0]) == 67349
    assert (isolated_data_env / "data/downstream/SST/binary/sentiment-train").is_file()
    tar_requests = [r for r in mirror.requests if r.endswith("senteval.tar")]
    assert len(tar_requests) == 1  # the other tasks used the kept archive
    assert list((isolated_data_env / "data" / "downloads").iterdir())[0].name.endswith("senteval.tar")
    # CR is not in this archive: a clear error, nothing installed
    with pytest.raises(DataNotFoundError, match=r"senteval.tar has no folder holding custrev.pos"):
        load_transfer("cr")
    assert not (isolated_data_env / "data/downstream/CR").exists()


def test_data_prefix_tie_break():
    from capcse.data.download import _data_prefix

    names = ["d/SST/fine/a", "d/SST/fine/b", "d/SST/binary/a", "d/SST/binary/b", "x/a"]
    assert _data_prefix(names, ("a", "b"), Path("t.tar"), ("downstream/SST/binary",)) == "d/SST/binary/"
    assert _data_prefix(names, ("a", "b"), Path("t.tar"), ("SST/fine",)) == "d/SST/fine/"
    assert _data_prefix(names, ("a", "b"), Path("t.tar")) == "d/SST/fine/"  # no hint: the shallowest, then name


def test_count_verification_rejects_truncated_copy(mirror, data_dir, isolated_data_env):
    """No published checksum (the STS-B tarball): a copy with a missing line fails its counts, is not kept."""
    url = REGISTRY["stsb"].layouts_for("raw")[0].sources[1].files[0].url
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for f in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
            data = (data_dir / "sts_raw/stsbenchmark" / f).read_bytes()
            if f == "sts-dev.csv":
                data = data[: data.rindex(b"\n", 0, len(data) - 1) + 1]  # drop the last pair
            info = tarfile.TarInfo(f"stsbenchmark/{f}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _serve(mirror, url, buf.getvalue())
    with pytest.raises(VerificationError, match=r"'dev': 1499.*expected .*'dev': 1500"):
        install_source(REGISTRY["stsb"], REGISTRY["stsb"].layouts_for("raw")[0],
                       REGISTRY["stsb"].layouts_for("raw")[0].sources[1])
    assert _cache_entries(isolated_data_env / "data") == []


def test_gz_source_and_custom_spec(mirror, tmp_path):
    """A single gzipped file (unpack="gz") with its sha256, through a spec built for the test."""
    body = b"first sentence\nsecond sentence\nthird\n"
    packed = gzip.compress(body)
    spec = DatasetSpec(
        name="tiny-corpus", kind="corpus", description="", unit="lines", expected=MappingProxyType({"lines": 3}),
        origin=("https://example.org/tiny.txt.gz",), license="",
        layouts=(Layout("full", ("tiny/tiny.txt",), sources=(Source("example", (RemoteFile(
            "https://example.org/tiny.txt.gz", unpack="gz", sha256=hashlib.sha256(packed).hexdigest()),)),)),),
    )
    _serve(mirror, "https://example.org/tiny.txt.gz", packed)
    path = install_source(spec, spec.layouts[0], spec.layouts[0].sources[0], cache_root=tmp_path / "c")
    assert path == tmp_path / "c/tiny/tiny.txt" and list(read_text_corpus(path)) == ["first sentence",
                                                                                      "second sentence", "third"]


def test_offline_makes_no_request(mirror, monkeypatch, isolated_data_env):
    monkeypatch.setenv("CAPCSE_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match=r"offline \(CAPCSE_OFFLINE=1\): no download attempted"):
        resolve_dataset("korsts")
    assert mirror.requests == []


def test_wiki1m_full_download_fails_then_prefix(mirror, data_dir):
    """The full wiki1m cannot be fetched (404): the shared 11,914-line prefix is used, and said so;
    asking for the full variant explicitly is an error."""
    assert resolve_dataset("wiki1m", data_dir=data_dir).name == "wiki1m_for_simcse.first11914.txt"
    with pytest.raises(DataNotFoundError, match=r"wiki1m \(variant 'full'\) not found[\s\S]*HTTP 404"):
        resolve_dataset("wiki1m", data_dir=data_dir, variant="full")


def test_extract_rejects_unsafe_members(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/ok.txt", "x")
        zf.writestr("data/../../escape.txt", "x")
    with pytest.raises(VerificationError, match="unsafe member path"):
        extract(archive, "zip", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_incomplete_cache_folder_is_completed(mirror, data_dir, isolated_data_env):
    """A cache folder missing files is not 'found'; the download adds what it lacks and keeps what is there."""
    folder = isolated_data_env / "data" / "kornli"
    folder.mkdir(parents=True)
    (folder / "NOTES.txt").write_text("mine")
    for rf in REGISTRY["kornli-xnli"].layouts[0].sources[0].files:
        _serve(mirror, rf.url, (data_dir / "kornli" / rf.dest).read_bytes())
    loc = locate("kornli-xnli")
    assert loc.downloaded and loc.path == folder
    assert sorted(p.name for p in folder.iterdir()) == ["NOTES.txt", "xnli.dev.ko.tsv", "xnli.test.ko.tsv"]
