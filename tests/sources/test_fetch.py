"""crystalrep.sources.fetch against a local HTTP server (never the network)."""

from __future__ import annotations

import hashlib
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from crystalrep.datasets import DatasetError, PropertyInfo, dataset_dir, list_datasets, load_dataset
from crystalrep.importers.api import import_path
from crystalrep.sources.fetch import MIRROR_ENV, SOURCES, Source, fetch, source_url
from crystalrep.store import crystalrep_home


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files whole, or from an offset when asked with ``Range: bytes=N-`` (unless told not to)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = Path(self.translate_path(self.path))
        self.server.requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        asked = self.headers.get("Range")
        if asked and self.server.honour_range:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def serve(monkeypatch):
    """``serve(folder, honour_range=True)`` -> (base URL, server); every server is shut down after."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(folder: Path, *, honour_range: bool = True):
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(folder)))
        server.honour_range = honour_range
        server.requests = []
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture()
def tiny_source(tmp_path, tiny_structures, monkeypatch) -> tuple[Path, Source]:
    """A 5-row CSV laid out as a mirror folder, registered as source ``tiny``."""
    folder = tmp_path / "mirror" / "tiny"
    folder.mkdir(parents=True)
    csv = folder / "val.csv"
    pd.DataFrame({"material_id": [f"t{i}" for i in range(len(tiny_structures))],
                  "cif": [s.to(fmt="cif") for s in tiny_structures],
                  "energy": [0.1 * i for i in range(len(tiny_structures))]}).to_csv(csv)
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()
    source = Source("tiny", "https://example.invalid/tiny/val.csv", digest, "tiny/val.csv",
                    "Five tiny crystals.", "CC0", (PropertyInfo("energy", "eV", "made up"),))
    monkeypatch.setitem(SOURCES, "tiny", source)
    return tmp_path / "mirror", source


def _downloads() -> list[str]:
    folder = crystalrep_home() / "downloads"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_table_is_pinned():
    assert set(SOURCES) == {"perov-5", "carbon-24", "mp-20", "matbench_phonons"}
    for source in SOURCES.values():
        assert re.search(r"/[0-9a-f]{40}/", source.url) and re.fullmatch(r"[0-9a-f]{64}", source.sha256)
    assert "validation split" in SOURCES["perov-5"].description
    assert "2,573" in SOURCES["mp-20"].description


@pytest.mark.shared
def test_checksums_match_shared_data(shared_data):
    for source in SOURCES.values():
        data = (shared_data / source.mirror_path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == source.sha256, source.name


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="valid names: perov-5, carbon-24, mp-20, matbench_phonons"):
        fetch("perov-6")


def test_fetch_downloads_verifies_and_saves(serve, tiny_source, monkeypatch):
    root, source = tiny_source
    base, server = serve(root)
    monkeypatch.setenv(MIRROR_ENV, base)
    assert source_url(source) == f"{base}/tiny/val.csv"
    seen: list[tuple[int, int]] = []
    report = fetch("tiny", progress=lambda d, t: seen.append((d, t)))
    ds = load_dataset("tiny")
    assert len(ds) == 5 and ds.fingerprint == report.dataset.fingerprint
    assert ds.meta["source"] == source.url and ds.meta["license"] == "CC0"
    assert ds.properties["energy"].unit == "eV"
    assert _downloads() == ["tiny/val.csv"] and server.requests == [("/tiny/val.csv", None)]
    assert seen[0] == (len((root / "tiny/val.csv").read_bytes()),) * 2  # bytes first, then import steps
    with pytest.raises(DatasetError, match="already exists"):
        fetch("tiny")
    assert len(server.requests) == 1  # refused before downloading
    fetch("tiny", overwrite=True)
    assert len(server.requests) == 1  # the verified download is reused


@pytest.mark.parametrize("honour_range", [True, False])
def test_resume_from_partial_download(serve, tiny_source, honour_range):
    root, source = tiny_source
    base, server = serve(root, honour_range=honour_range)
    data = (root / "tiny/val.csv").read_bytes()
    part = crystalrep_home() / "downloads" / "tiny" / "val.csv.part"
    part.parent.mkdir(parents=True)
    # With Range honoured we keep a true prefix; when the server ignores Range the prefix is
    # garbage, which only a restart from byte 0 turns into the right file.
    part.write_bytes(data[:300] if honour_range else b"x" * 300)
    fetch("tiny", mirror=base)
    assert server.requests == [("/tiny/val.csv", "bytes=300-")]
    assert _downloads() == ["tiny/val.csv"]
    assert hashlib.sha256((part.parent / "val.csv").read_bytes()).hexdigest() == source.sha256


def test_complete_part_file_is_accepted(serve, tiny_source):
    root, _ = tiny_source
    base, server = serve(root)
    part = crystalrep_home() / "downloads" / "tiny" / "val.csv.part"
    part.parent.mkdir(parents=True)
    part.write_bytes((root / "tiny/val.csv").read_bytes())
    assert len(fetch("tiny", mirror=base).dataset) == 5  # the server answers 416: nothing left
    assert _downloads() == ["tiny/val.csv"]


def test_checksum_mismatch_leaves_nothing(serve, tiny_source):
    root, _ = tiny_source
    csv = root / "tiny/val.csv"
    csv.write_bytes(csv.read_bytes().replace(b"0.1", b"0.2"))
    base, _server = serve(root)
    with pytest.raises(DatasetError, match="checksum mismatch for tiny/val.csv") as info:
        fetch("tiny", mirror=base)
    assert "\n" not in str(info.value)
    assert _downloads() == [] and not dataset_dir("tiny").exists()
    assert "tiny" not in [d["name"] for d in list_datasets()]


def test_network_errors_are_clear(serve, tiny_source, tmp_path):
    root, _ = tiny_source
    base, _server = serve(tmp_path / "nothing-here")
    with pytest.raises(DatasetError, match="HTTP 404"):
        fetch("tiny", mirror=base)
    with pytest.raises(DatasetError, match="failed .*run again to resume"):
        fetch("tiny", url="http://127.0.0.1:9/tiny/val.csv", timeout=5)
    assert not dataset_dir("tiny").exists()


@pytest.mark.shared
@pytest.mark.slow
def test_fetch_matbench_phonons_end_to_end(serve, shared_data):
    base, server = serve(shared_data)
    report = fetch("matbench_phonons", mirror=base)
    ds = load_dataset("matbench_phonons")
    assert len(ds) == 1265 and report.rejected == [] and ds.ids[0] == "matbench_phonons-0"
    assert ds.properties["last phdos peak"].unit == "cm^-1"
    assert server.requests == [("/matbench_phonons/matbench_phonons.json.gz", None)]


@pytest.mark.shared
@pytest.mark.slow
def test_fetch_perov5_end_to_end(serve, shared_data, monkeypatch):
    base, _server = serve(shared_data)
    monkeypatch.setenv(MIRROR_ENV, base)
    report = fetch("perov-5")
    ds = load_dataset("perov-5")
    assert len(ds) == 3787 and report.rejected == [] and ds.meta["imported_rows"] == 3787
    assert {"heat_all", "heat_ref", "dir_gap", "ind_gap"} <= set(ds.property_names("numeric"))
    assert ds.properties["heat_ref"].unit == "eV/cell" and "validation split" in ds.meta["description"]
    assert ds.meta["source"].startswith("https://raw.githubusercontent.com/txie-93/cdvae/")


def test_fetch_streams_into_shards_with_the_whole_file_result(serve, tiny_source, monkeypatch):
    root, _source = tiny_source
    base, _server = serve(root)
    monkeypatch.setenv(MIRROR_ENV, base)
    report = fetch("tiny", workers=2)
    whole = import_path(root / "tiny" / "val.csv", name="whole", workers=1,
                        property_info={"energy": PropertyInfo("energy", "eV", "made up")})
    ds = load_dataset("tiny")
    assert list(dataset_dir("tiny").glob("shard-*.parquet"))  # written by the streaming import
    assert ds.fingerprint == whole.dataset.fingerprint and ds.ids == whole.dataset.ids
    assert ds.properties == whole.dataset.properties and ds.table["energy"].tolist() == whole.dataset.table["energy"].tolist()
    assert report.rejected == whole.rejected


def test_fetch_of_a_matbench_json_streams_it(serve, tmp_path, tiny_structures, monkeypatch):
    import gzip
    import json

    folder = tmp_path / "mirror" / "mb"
    folder.mkdir(parents=True)
    table = {"index": list(range(len(tiny_structures))), "columns": ["structure", "peak"],
             "data": [[s.as_dict(), 100.0 + k] for k, s in enumerate(tiny_structures)]}
    path = folder / "mb.json.gz"
    path.write_bytes(gzip.compress(json.dumps(table).encode()))
    source = Source("mb", "https://example.invalid/mb/mb.json.gz", hashlib.sha256(path.read_bytes()).hexdigest(),
                    "mb/mb.json.gz", "A tiny matbench table.", "CC0", (PropertyInfo("peak", "cm^-1", "made up"),))
    monkeypatch.setitem(SOURCES, "mb", source)
    base, _server = serve(tmp_path / "mirror")
    report = fetch("mb", mirror=base, workers=1)
    whole = import_path(path, name="whole", workers=1)
    assert report.dataset.fingerprint == whole.dataset.fingerprint and report.dataset.ids[0] == "mb-0"
    assert report.dataset.properties["peak"].unit == "cm^-1" and report.format == "matbench-json"
