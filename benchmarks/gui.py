"""Desktop responsiveness on this machine: start-up to a usable window, worklist throughput, longest event-loop stall.

Prints JSON (medians of repeated runs). Start-up runs in fresh processes; the worklist runs the real window on
full-size JPEG X-rays, with a QTimer ticking every few milliseconds to record the longest gap while the batch runs.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui.py [--model BUNDLE_DIR] [--images 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sample_images import FULL_SIZE, full_size_jpegs

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 5
BUDGETS = {"startup_s": 3.0, "worklist_images_per_second": 40.0, "longest_stall_ms": 50.0}


def startup_child(launched: float, model: str | None) -> None:
    """In a fresh process: time from launch to a shown window whose event loop has turned once, and to model ready."""
    from PySide6.QtCore import QTimer

    from pneumodesk.gui.app import create_application
    from pneumodesk.gui.main_window import MainWindow

    app = create_application()
    with tempfile.TemporaryDirectory() as home:
        window = MainWindow(home=Path(home), bundle=Path(model) if model else None)
        window.show()
        figures: dict[str, float] = {}

        def usable() -> None:
            figures["startup_s"] = time.time() - launched

        def ready(*_: object) -> None:
            figures["model_ready_s"] = time.time() - launched
            app.quit()

        QTimer.singleShot(0, usable)
        window.model_loaded.connect(ready)
        window.model_failed.connect(ready)
        app.exec()
        window.close()
    print(json.dumps(figures))


def measure_startup(model: str | None) -> dict[str, float]:
    command = [sys.executable, __file__, "--model", model] if model else [sys.executable, __file__]
    command += ["--startup-child", str(time.time())]  # the clock starts as the process is launched
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def signed_in_owner(home: Path):  # type: ignore[no-untyped-def]
    """An Owner in a throw-away node store, signed in (random password, never shown or kept)."""
    import secrets

    from pneumodesk.node import NodeService

    password = secrets.token_urlsafe(18)
    node = NodeService.open(home)
    try:
        node.accounts.create_owner("bench.owner", "Benchmark Owner", password)
        return node.accounts.authenticate("bench.owner", password)
    finally:
        node.close()


def measure_worklist(model: str | None, paths: list[Path]) -> dict[str, float]:
    """One batch through the real window: images/s, and the longest gap between timer ticks while it ran."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from pneumodesk.gui.app import create_application
    from pneumodesk.gui.main_window import MainWindow

    create_application()
    with tempfile.TemporaryDirectory() as home:
        session = signed_in_owner(Path(home))
        window = MainWindow(home=Path(home), bundle=Path(model) if model else None, session=session)
        window.show()
        loop = QEventLoop()
        window.model_loaded.connect(loop.quit)
        window.model_failed.connect(lambda message: (print(message, file=sys.stderr), loop.quit()))
        loop.exec()
        if window.predictor is None:
            raise SystemExit("the model did not load")
        page = window.predict_page
        clock = QElapsedTimer()
        gaps: list[float] = []
        last = [0.0]

        def tick() -> None:
            now = clock.nsecsElapsed() / 1e6
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(TICK_MS)
        timer.timeout.connect(tick)
        done = QEventLoop()
        page.batch_finished.connect(done.quit)
        clock.start()
        timer.start()
        started = time.perf_counter()
        page.add_paths(paths)
        done.exec()
        elapsed = time.perf_counter() - started
        timer.stop()
        predicted = sum(item.prediction is not None for item in page.model.entries())
        window.close()
    if predicted != len(paths):
        raise SystemExit(f"only {predicted} of {len(paths)} images were predicted")
    return {"images_per_second": len(paths) / elapsed, "longest_stall_ms": max(gaps or [0.0])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model bundle (default: the bundled model)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--startup-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.startup_child is not None:
        startup_child(args.startup_child, args.model)
        return 0

    startups = [measure_startup(args.model) for _ in range(args.repeats)]
    with tempfile.TemporaryDirectory() as folder:
        paths = full_size_jpegs(Path(folder), args.images)
        runs = [measure_worklist(args.model, paths) for _ in range(args.repeats)]

    import torch

    from pneumodesk.model import default_bundle_path, load_bundle

    card = load_bundle(Path(args.model) if args.model else default_bundle_path()).card
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "qpa": os.environ["QT_QPA_PLATFORM"],
        },
        "model": {"version": card.version, "architecture": card.architecture, "input_size": card.input_size},
        "repeats": args.repeats,
        "startup_to_usable_window_s_median": round(statistics.median(s["startup_s"] for s in startups), 2),
        "startup_to_model_ready_s_median": round(statistics.median(s.get("model_ready_s", 0) for s in startups), 2),
        "worklist_images": args.images,
        "worklist_image": {"format": "JPEG", "width": FULL_SIZE[0], "height": FULL_SIZE[1]},
        "worklist_images_per_second_median": round(statistics.median(r["images_per_second"] for r in runs), 1),
        "longest_event_loop_stall_ms_median": round(statistics.median(r["longest_stall_ms"] for r in runs), 1),
        "timer_interval_ms": TICK_MS,
        "budgets": BUDGETS,
    }
    report["within_budget"] = {
        "startup": report["startup_to_usable_window_s_median"] <= BUDGETS["startup_s"],
        "worklist": report["worklist_images_per_second_median"] >= BUDGETS["worklist_images_per_second"],
        "stall": report["longest_event_loop_stall_ms_median"] <= BUDGETS["longest_stall_ms"],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
