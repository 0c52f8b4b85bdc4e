"""Cut the full-length recordings into the fixed train / val / test stretches of a split file.

    python scripts/cut_splits.py recipes/splits/violin-bach.json [--data ../shared/data]
        [--out runs/audio]

writes ``OUT/<source>/train/*.flac``, ``OUT/<source>/val/*.flac`` (the folder ``fastddsp
prepare`` reads, validation files passed with ``--val``) and ``OUT/<source>-<split>/*.flac`` for
every other held-out split (kept out of prepare's folder); files listed under ``unused`` are
cut for no split. Pieces keep the source's rate and
channels (``prepare`` mixes down and resamples); names carry the start second, so a re-run
writes the same files (and the feature cache, keyed by content, is reused).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf

from fastddsp.atomic import atomic_path


def stretches(duration: float, held_out: list[dict], piece: float
              ) -> list[tuple[float, float, str]]:
    """``(start, end, split)`` covering ``[0, duration]``: the held-out stretches as given,
    the rest ``train``, every stretch cut into pieces of at most ``piece`` seconds."""
    marks = sorted((h["start"], duration if h["end"] is None else h["end"], h["split"])
                   for h in held_out)
    out, t = [], 0.0
    for start, end, split in marks + [(duration, duration, "")]:
        if start > t:
            out.append((t, start, "train"))
        if split:
            out.append((start, min(end, duration), split))
        t = max(t, end)
    pieces = []
    for start, end, split in out:
        s = start
        while end - s > 0.5:
            e = min(end, s + piece) if end - (s + piece) > 5 else end  # no sliver at the end
            pieces.append((s, e, split))
            s = e
    return pieces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("split_file", type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("runs/audio"))
    args = ap.parse_args()
    spec = json.loads(args.split_file.read_text())
    source = spec["source"]
    by_file: dict[str, list[dict]] = {}
    for h in spec["held_out"]:
        by_file.setdefault(h["file"], []).append(h)
    unused = set(spec.get("unused", {}).get("files", []))
    for path in sorted((args.data / source).iterdir()):
        if path.name in unused or not path.is_file():
            continue
        with sf.SoundFile(path) as f:
            sr, audio = f.samplerate, f.read(dtype="float32", always_2d=True)
        for start, end, split in stretches(audio.shape[0] / sr, by_file.get(path.name, []),
                                           spec["piece_seconds"]):
            folder = (args.out / source / split if split in ("train", "val")
                      else args.out / f"{source}-{split}")
            target = folder / f"{path.stem}_{start:06.1f}.flac"
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(target, suffix=".flac") as tmp:
                sf.write(tmp, audio[round(start * sr): round(end * sr)], sr, subtype="PCM_24")
            print(f"{split:7s} {target}  {end - start:6.1f} s")


if __name__ == "__main__":
    main()
