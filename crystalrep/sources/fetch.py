"""Download public benchmark datasets from pinned URLs, check sha256, resume, then import.

Files go to ``$CRYSTALREP_HOME/downloads/<name>/``; a partial download is kept as ``<file>.part`` and
resumed with an HTTP Range request. A checksum mismatch deletes the download and raises, so
nothing unverified is ever imported. The verified file goes through the streaming import
(:func:`crystalrep.importers.stream.import_streaming`), like ``crystalrep data import``.
``CRYSTALREP_FETCH_MIRROR`` (or ``mirror=``) points at a
base URL laid out like ``../shared/data`` (``<mirror>/perov_5/val.csv``), used by the tests.
"""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from crystalrep.datasets import DatasetError, PropertyInfo
from crystalrep.importers.api import ImportReport, check_target
from crystalrep.importers.parse import Progress
from crystalrep.store import crystalrep_home, sha256_file

log = logging.getLogger(__name__)

MIRROR_ENV = "CRYSTALREP_FETCH_MIRROR"
CHUNK = 1 << 16
MAX_BYTES = 1 << 30
_CDVAE = "https://raw.githubusercontent.com/txie-93/cdvae/f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea/data"


@dataclass(frozen=True)
class Source:
    """One public dataset file: where it lives, its checksum, and what its columns mean."""

    name: str
    url: str
    sha256: str
    mirror_path: str
    description: str
    license: str
    properties: tuple[PropertyInfo, ...] = ()

    @property
    def filename(self) -> str:
        """Local path under the download folder: ``<name>/<remote basename>`` (ids use its stem)."""
        return f"{self.name}/{self.url.rsplit('/', 1)[-1]}"


_UNDOC = "unit not documented by the source"
SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("perov-5", f"{_CDVAE}/perov_5/val.csv",
           "326f401219901270374b71e2faff63df3a29a99fd26f469993b9f476b693daf2", "perov_5/val.csv",
           "Perov-5, CDVAE validation split: 3,787 of 18,928 cubic ABX3 perovskites (5 atoms per cell) "
           "with GPAW DFT heats of formation and GLLB-SC band gaps (Castelli et al. 2012, CMR).",
           "MIT (txie-93/cdvae); cite Castelli et al. 2012 (CMR)",
           (PropertyInfo("heat_all", "eV/cell", f"heat of formation, all-element references; {_UNDOC}, most likely eV per 5-atom cell"),
            PropertyInfo("heat_ref", "eV/cell", f"heat of formation vs the CMR reference set (CDVAE's target); {_UNDOC}, most likely eV per 5-atom cell"),
            PropertyInfo("dir_gap", "eV", f"direct band gap (GLLB-SC); {_UNDOC}, presumably eV"),
            PropertyInfo("ind_gap", "eV", f"indirect band gap (GLLB-SC); {_UNDOC}, presumably eV"))),
    Source("carbon-24", f"{_CDVAE}/carbon_24/val.csv",
           "36c00689cd63073c954a58bc6ed6e2adb7aeed5a630c994970959a1babffd50e", "carbon_24/val.csv",
           "Carbon-24, CDVAE validation split: 2,032 of 10,153 pure-carbon AIRSS structures at 10 GPa "
           "(6-24 atoms per cell; Pickard 2020, Materials Cloud).",
           "MIT (txie-93/cdvae); data: Pickard 2020, Materials Cloud 2020.0026/v1",
           (PropertyInfo("energy_per_atom", "eV/atom", f"DFT total energy per atom, not a formation energy; {_UNDOC}, values consistent with eV/atom"),)),
    Source("mp-20", "https://raw.githubusercontent.com/xiaohang007/SLICES/"
           "b3719d74ad253fc9baadf2e875470f686d259694/MatterGPT/raw_mp20_dataset_mini.csv",
           "889dfda365876656d8782a560eacf703fafaec5182a3162d087cf6c914aa6d96",
           "mp_20_mini_slices/raw_mp20_dataset_mini.csv",
           "MP-20 subset: 2,573 rows of the CDVAE MP-20 dataset (Materials Project, at most 20 atoms per "
           "cell) as shipped with SLICES/MatterGPT; how the rows were drawn and from which split is not documented.",
           "LGPL-2.1 (xiaohang007/SLICES); MP-20 from txie-93/cdvae (MIT); Materials Project data",
           (PropertyInfo("formation_energy_per_atom", "eV/atom", "DFT (PBE/PBE+U) formation energy, Materials Project"),
            PropertyInfo("band_gap", "eV", "DFT (PBE) band gap, Materials Project"),
            PropertyInfo("e_above_hull", "eV/atom", "energy above the convex hull, Materials Project"),
            PropertyInfo("spacegroup.number", "", "space-group number given by the source"))),
    Source("matbench_phonons", "https://raw.githubusercontent.com/CompRhys/aviary/"
           "a021eb723a5128d45df7387ba57ec50a4834afe9/tests/data/matbench_phonons.json.gz",
           "4db551f21ec5f577e6202725f10e34dfc509aa7df3a6bdaac497da7f6dbbb9b3",
           "matbench_phonons/matbench_phonons.json.gz",
           "Matbench v0.1 matbench_phonons: 1,265 Materials Project structures with the highest-frequency "
           "peak of the DFPT phonon DOS (Petretto et al. 2018), from the aviary test fixture.",
           "MIT (CompRhys/aviary); data: Matbench (Dunn et al. 2020), Petretto et al. 2018",
           (PropertyInfo("last phdos peak", "cm^-1", "frequency of the highest peak of the phonon DOS (ABINIT DFPT)"),)),
)}


def source_url(source: Source, *, mirror: str | None = None) -> str:
    """The URL to download from: the pinned one, or its counterpart under a mirror."""
    base = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    return f"{base.rstrip('/')}/{source.mirror_path}" if base else source.url


class _WrongRange(Exception):
    """The server resumed from another offset than asked; the partial file must be dropped."""


def _get(url: str, part: Path, *, timeout: float, progress: Progress | None) -> None:
    """Append the rest of ``url`` to ``part`` (Range request), restarting if the server ignores it."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "crystalrep-fetch", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            status = resp.status or 200
            if offset and status == 206 and not resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                raise _WrongRange
            if status != 206:
                offset = 0  # the server ignored Range: start again from the first byte
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            done = offset
            with open(part, "ab" if offset else "wb") as fh:
                while block := resp.read(CHUNK):
                    fh.write(block)
                    done += len(block)
                    if done > MAX_BYTES:
                        raise DatasetError(f"download of {url} exceeds {MAX_BYTES // 2**20} MB; stopped.")
                    if progress is not None:
                        progress(done, max(total or done, done))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # nothing left to send: the .part is already complete (checked next)
        raise DatasetError(f"download of {url} failed (HTTP {exc.code} {exc.reason}).") from exc
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetError(f"download of {url} failed ({reason}); run again to resume.") from exc


def download(source: Source, *, dest: Path | None = None, url: str | None = None,
             progress: Progress | None = None, timeout: float = 60) -> Path:
    """Download and verify one source file; an existing verified file is reused.

    Raises:
        DatasetError: On a network failure (the ``.part`` is kept for resuming) or a checksum
            mismatch (the download is deleted).
    """
    target = (Path(dest) if dest is not None else crystalrep_home() / "downloads") / source.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and sha256_file(target) == source.sha256:
        log.info("%s: using verified %s", source.name, target)
        return target
    target.unlink(missing_ok=True)
    part = target.with_name(f"{target.name}.part")
    url = url or source_url(source)
    log.info("%s: downloading %s", source.name, url)
    try:
        _get(url, part, timeout=timeout, progress=progress)
    except _WrongRange:
        part.unlink(missing_ok=True)
        _get(url, part, timeout=timeout, progress=progress)
    digest = sha256_file(part) if part.is_file() else ""
    if digest != source.sha256:
        part.unlink(missing_ok=True)
        raise DatasetError(f"{source.name}: checksum mismatch for {source.filename} (expected "
                           f"{source.sha256[:12]}…, got {digest[:12] or 'nothing'}…); the download was deleted.")
    os.replace(part, target)
    return target


def fetch(name: str, *, dest: str | Path | None = None, progress: Progress | None = None,
          timeout: float = 60, url: str | None = None, mirror: str | None = None,
          overwrite: bool = False, workers: int | None = None) -> ImportReport:
    """Download a public benchmark, verify its sha256, and import it as dataset ``name`` (streaming, in shards).

    Args:
        name: One of ``SOURCES`` (perov-5, carbon-24, mp-20, matbench_phonons).
        dest: Download folder; defaults to ``$CRYSTALREP_HOME/downloads``.
        progress: Called with ``(done, total)``: bytes while downloading, then import steps.
        timeout: Seconds to wait for the server on each request.
        url: Download this exact URL instead (the checksum is still enforced).
        mirror: Base URL laid out like ``../shared/data``; defaults to ``$CRYSTALREP_FETCH_MIRROR``.
        overwrite: Replace an existing dataset of the same name.
        workers: Processes parsing the import's chunks; default every core.

    Raises:
        ValueError: If ``name`` is not a known source.
        DatasetError: On download, checksum or import failure.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; valid names: {', '.join(SOURCES)}.")
    source = SOURCES[name]
    check_target(source.name, overwrite=overwrite)  # fail before downloading, not after
    path = download(source, dest=Path(dest) if dest is not None else None,
                    url=url or source_url(source, mirror=mirror), progress=progress, timeout=timeout)
    from crystalrep.importers.stream import import_streaming

    return import_streaming(path, name=source.name, overwrite=overwrite, workers=workers, progress=progress,
                            source=source.url, license=source.license, description=source.description,
                            property_info={p.name: p for p in source.properties})
