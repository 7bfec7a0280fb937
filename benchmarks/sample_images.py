"""Full-size test X-rays for the benchmarks: the bundled samples upsampled to 1500×1200 and saved as JPEG, as a
hospital export would be. ``count`` files cycling through ``distinct`` different images (copied byte for byte)."""

from __future__ import annotations

from pathlib import Path

FULL_SIZE = (1500, 1200)  # width × height of a typical digitised chest radiograph


def full_size_jpegs(folder: Path, count: int, distinct: int = 16) -> list[Path]:
    import numpy as np
    from PIL import Image

    from pneumodesk.model.default import samples_path

    samples = sorted(samples_path().glob("*.jpeg"))
    originals = []
    for i in range(distinct):
        with Image.open(samples[i % len(samples)]) as image:
            grey = image.convert("L").resize(FULL_SIZE, Image.Resampling.BICUBIC)
        noise = np.random.default_rng(i).normal(0, 2, grey.size[::-1])
        grey = Image.fromarray(np.clip(np.asarray(grey, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
        path = folder / f"distinct_{i:02d}.jpg"
        grey.save(path, quality=92)
        originals.append(path.read_bytes())
    paths = []
    for i in range(count):
        path = folder / f"image_{i:04d}.jpg"
        path.write_bytes(originals[i % distinct])
        paths.append(path)
    return paths
