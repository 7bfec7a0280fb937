"""Fuzzing the readers (bounded, fixed seed): every mutated PNG/JPEG/TIFF/BMP/DICOM decodes or gets a typed, plain
error, each within the time limit, and the whole run does not balloon memory. The long run is
benchmarks/fuzz_readers.py; what it ever found is replayed by tests/unit/test_imaging_corpus.py."""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.image_fuzz import FuzzInput, check_bytes, chest_dicom_seed, mutated_inputs, pydicom_seeds, raster_seeds

DICOM_SEEDS = [*pydicom_seeds(), chest_dicom_seed()]
RASTER_SEEDS = raster_seeds()
FOLDER = Path(tempfile.mkdtemp(prefix="pneumodesk-fuzz-"))
BOUNDED = settings(derandomize=True, max_examples=500, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_the_seeds_include_pydicoms_own_test_files_and_every_raster_format():
    names = {seed.name for seed in DICOM_SEEDS}
    assert len(DICOM_SEEDS) > 150 and {"pydicom:badVR.dcm", "pydicom:MR_small_RLE.dcm"} <= names
    assert {Path(seed.name).suffix for seed in RASTER_SEEDS} == {".png", ".jpg", ".tif", ".bmp"}


@BOUNDED
@given(mutated_inputs(DICOM_SEEDS))
def test_mutated_dicom_files_decode_or_get_a_typed_plain_error(fuzz_input: FuzzInput):
    check_bytes(fuzz_input, FOLDER)


@BOUNDED
@given(mutated_inputs([*RASTER_SEEDS, chest_dicom_seed()]))
def test_mutated_raster_files_decode_or_get_a_typed_plain_error(fuzz_input: FuzzInput):
    check_bytes(fuzz_input, FOLDER)


def test_a_fuzz_run_does_not_balloon_memory():
    before = _peak_mib()

    @settings(BOUNDED, max_examples=150)
    @given(mutated_inputs(DICOM_SEEDS + RASTER_SEEDS))
    def run(fuzz_input: FuzzInput) -> None:
        check_bytes(fuzz_input, FOLDER)

    run()
    assert _peak_mib() - before < 512
