"""crystalrep.importers.upload: an upload goes through the streaming import and leaves no file behind."""

from __future__ import annotations

import io
import zipfile

import pytest

from crystalrep.datasets import DatasetError, dataset_dir, load_dataset
from crystalrep.importers.api import import_upload
from crystalrep.importers.upload import UPLOADS, import_upload_streaming, upload_name
from crystalrep.store import crystalrep_home


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


def _left_behind() -> list[str]:
    folder = crystalrep_home() / UPLOADS
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_zip_upload_equals_the_in_memory_import_and_is_saved_in_shards(tiny_structures):
    data = _zip({f"set/c{k}.cif": s.to(fmt="cif") for k, s in enumerate(tiny_structures)} | {"set/bad.cif": "garbage"})
    whole = import_upload("set.zip", data, name="whole")
    seen: list[tuple[int, int]] = []
    report = import_upload_streaming("set.zip", data, name="up", progress=lambda d, t: seen.append((d, t)))
    ds = load_dataset("up")
    assert ds.fingerprint == report.dataset.fingerprint == whole.dataset.fingerprint and ds.ids == whole.dataset.ids
    assert [r.row for r in report.rejected] == [r.row for r in whole.rejected] == ["bad.cif"]
    assert ds.meta["source"] == "upload:set.zip" and list(dataset_dir("up").glob("shard-*.parquet"))
    assert seen and seen[-1][0] == seen[-1][1]
    assert _left_behind() == []


@pytest.mark.parametrize(("filename", "data"), [("x.cif", b"\x00\xff\xfe garbage"), ("x.xyz", b"3\n\nFe 0 0 0\n"),
                                                ("x.json", b"{not json"), ("x.zip", b"not a zip")])
def test_a_bad_upload_is_one_sentence_naming_the_upload_and_leaves_nothing(filename, data):
    with pytest.raises(DatasetError) as info:
        import_upload_streaming(filename, data, name="bad")
    message = str(info.value)
    assert "\n" not in message and len(message) <= 300 and ".upload-" not in message and str(crystalrep_home()) not in message
    assert _left_behind() == [] and not dataset_dir("bad").exists()


def test_a_taken_name_or_a_huge_upload_is_refused_before_writing(tiny_structures, monkeypatch):
    cif = tiny_structures[0].to(fmt="cif").encode()
    import_upload_streaming("a.cif", cif, name="taken")
    with pytest.raises(DatasetError, match="already exists"):
        import_upload_streaming("a.cif", cif, name="taken")
    assert len(import_upload_streaming("a.cif", cif, name="taken", overwrite=True).dataset) == 1
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_DECOMPRESSED_BYTES", "100")
    with pytest.raises(DatasetError, match="a.cif: is too large.*max_decompressed_bytes"):
        import_upload_streaming("a.cif", cif, name="huge")
    assert _left_behind() == []


def test_upload_names_stay_inside_the_temporary_folder():
    assert upload_name("../../etc/passwd") == "passwd" and upload_name("C:\\x\\y.cif") == "y.cif"
    assert upload_name("...") == "upload" and upload_name(".hidden.cif") == "hidden.cif"
