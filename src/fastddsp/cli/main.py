"""The `fastddsp` command: parse arguments, call the API, print. No logic of its own.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"fastddsp: error: {message}\n")


def cmd_synth(args: argparse.Namespace) -> int:
    from ..io import output_format, read_features_csv, refuse_overwrite, write_audio_chunks
    from ..models import load
    from ..synthesis import feature_chunks

    out = Path(args.output)
    refuse_overwrite(out, Path(args.features))
    output_format(out)
    model = load(args.model)
    feats = read_features_csv(args.features, frame_rate=model.frame_rate)
    chunks = feature_chunks(model, feats, seed=args.seed, where=str(args.features))
    n = write_audio_chunks(out, chunks, model.sample_rate)
    print(f"wrote {out} ({n / model.sample_rate:.2f} s at {model.sample_rate} Hz)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..models import resolve

    info = resolve(args.model).describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    cfg = info["config"]
    print(f"decoder_parameters: {info['decoder_parameters']:,}")
    print(f"frame_rate: {info['frame_rate']:g} frames/s")
    past, ahead = info["receptive_field_frames"]
    print(f"receptive_field: {'unbounded' if past < 0 else past} frames past, {ahead} ahead")
    for key, value in cfg.items():
        print(f"{key}: {value}")
    if info["stats"]:
        print(f"stats: {', '.join(sorted(info['stats']))}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from ..features import extract_features
    from ..features.pitch import get_tracker
    from ..io import read_audio, refuse_overwrite, write_features_csv

    out = Path(args.output)
    refuse_overwrite(out, Path(args.input))
    if args.frame_rate <= 0 or args.frame_rate > 2000:
        raise UserError("--frame-rate must be within (0, 2000] frames/s")
    audio, sr = read_audio(args.input)
    feats = extract_features(audio, sr, pitch=args.pitch, frame_rate=args.frame_rate,
                             loudness_rate=args.sample_rate, cache=not args.no_cache)
    write_features_csv(out, feats)
    threshold = get_tracker(args.pitch).voicing_threshold
    voiced = float((feats.confidence >= threshold).mean()) if feats.n_frames else 0.0
    print(f"wrote {out}: {feats.n_frames} frames at {feats.frame_rate:g}/s, "
          f"{voiced:.0%} confidently voiced")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    import warnings

    from ..data import prepare_dataset
    from ..progress import progress_bar

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = prepare_dataset(args.audio_dir, args.output, sample_rate=args.sample_rate,
                            frame_rate=args.frame_rate, pitch=args.pitch,
                            example_seconds=args.example_seconds, hop_seconds=args.hop_seconds,
                            val_fraction=args.val_fraction, val_names=args.val or (),
                            progress=progress_bar("prepare"))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"{s.data_dir}: {s.processed} processed, {s.reused} unchanged, "
          f"{len(s.skipped)} skipped; train {s.train_examples} examples "
          f"({s.train_seconds:.1f} s), validation {s.val_examples} examples "
          f"({s.val_seconds:.1f} s)")
    return 0


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{option} must be comma-separated numbers, not {text!r}") from None
    if not values:
        raise UserError(f"{option} is empty")
    return values


def cmd_train(args: argparse.Namespace) -> int:
    from ..io import refuse_overwrite
    from ..models import model_file
    from ..train import TrainConfig, train

    output = Path(args.output)
    output = output if output.suffix else output.with_suffix(".fddsp")  # as train() writes it
    refuse_overwrite(output, *(model_file(m) for m in (args.init, args.teacher) if m))
    preset = args.preset or (None if args.init else "tiny")
    cfg = TrainConfig(preset=preset, steps=args.steps, batch_size=args.batch_size,
                      crop_seconds=args.crop_seconds, lr=args.lr, decay_steps=args.decay_steps,
                      weight_decay=args.weight_decay,
                      pitch_shifts=_floats(args.pitch_shifts, "--pitch-shifts"),
                      unvoiced_shift=args.unvoiced_shift, gain_db=args.gain_db,
                      max_harmonic_hz=args.max_harmonic_hz, noise_floor=args.noise_floor,
                      reverb=args.reverb, init=args.init, teacher=args.teacher,
                      teacher_variants=args.teacher_variants, max_minutes=args.max_minutes,
                      val_every=args.val_every, checkpoint_every=args.checkpoint_every,
                      seed=args.seed, ema=args.ema, keep=args.keep, patience=args.patience,
                      accelerator=args.accelerator,
                      devices=int(args.devices) if args.devices.isdigit() else args.devices,
                      precision=args.precision)
    r = train(args.data_dir, args.output, cfg, run_dir=args.run_dir, resume=args.resume,
              progress=not args.quiet)
    val = f", validation loss {r.final_val_loss:.3f}" if r.final_val_loss is not None else ""
    if r.kept_step is not None:
        val += f" (the weights of step {r.kept_step}, the best validated)"
    speed = (f" in {r.seconds:.0f} s ({r.seconds_per_step:.3f} s/step)"
             if r.last_step > r.first_step else " (nothing left to train)")
    print(f"wrote {r.model_path}: steps {r.first_step}->{r.last_step}{speed}{val}; logs and "
          f"checkpoints in {r.run_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate_model, evaluate_outputs
    from ..models import load

    target = Path(args.model)
    if target.is_dir():
        report = evaluate_outputs(target, args.source, tag=args.tag, score_pitch=args.pitch,
                                  out_dir=args.output)
    else:
        report = evaluate_model(load(args.model), args.source, out_dir=args.output,
                                split=args.split, features_pitch=args.features_pitch,
                                score_pitch=args.pitch, label=target.stem)
    print(f"{'clip':24} {'spectral':>9} {'loud L1 dB':>10} {'f0 L1 st':>9} {'outliers':>9}")
    for c in report.clips:
        print(f"{c.name[:24]:24} {c.spectral_distance:9.3f} {c.loudness_l1_db:10.2f} "
              f"{c.f0_l1_semitones:9.3f} {c.outlier_ratio:9.1%}")
    m = report.mean()
    print(f"{'mean':24} {m['spectral_distance']:9.3f} {m['loudness_l1_db']:10.2f} "
          f"{m['f0_l1_semitones']:9.3f} {m['outlier_ratio']:9.1%}")
    return 0


def _check_rate(rate: int | None) -> None:
    if rate is not None and not 4000 <= rate <= 192000:
        raise UserError("--sr must be within 4000..192000 Hz")


def cmd_transfer(args: argparse.Namespace) -> int:
    from ..io import check_outputs
    from ..models import load
    from ..timbre_transfer import parse_loudness, parse_octave, transfer_file

    inputs = [Path(p) for p in args.inputs]
    model = load(args.model)
    octave, loudness = parse_octave(args.octave), parse_loudness(args.loudness)
    _check_rate(args.sr)
    out = Path(args.output) if args.output else None
    if len(inputs) > 1 and out is not None and out.suffix:
        raise UserError("with several inputs, -o must be a folder")
    pairs = []
    for src in inputs:
        if out is None:
            dst = src.with_name(f"{src.stem}.{Path(args.model).stem}.wav")
        elif len(inputs) > 1 or out.is_dir():
            dst = out / f"{src.stem}.{Path(args.model).stem}.wav"
        else:
            dst = out
        pairs.append((src, dst))
    check_outputs(pairs)  # before anything is written
    for src, dst in pairs:
        r = transfer_file(str(src), str(dst), model, octave=octave,
                          pitch_shift=args.pitch_shift, loudness=loudness, pitch=args.pitch,
                          sr_out=args.sr)
        a = r.adjustment
        print(f"wrote {r.output}: {r.seconds:.2f} s at {r.sample_rate} Hz "
              f"(octave {a.octaves:+d}, pitch shift {a.semitones:+g} st, "
              f"loudness {a.loudness_mode}, {a.voiced_share:.0%} voiced)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from ..io import output_format, refuse_overwrite, write_audio_chunks
    from ..models import load
    from ..render import read_score, render_note_chunks

    out = Path(args.output)
    _check_rate(args.sr)
    refuse_overwrite(out, Path(args.score))
    output_format(out)
    notes = read_score(args.score)
    model = load(args.model)
    rate = args.sr or model.sample_rate
    n = write_audio_chunks(out, render_note_chunks(notes, model, seed=args.seed),
                           model.sample_rate, rate)
    print(f"wrote {out}: {len(notes)} notes, {n / rate:.2f} s at {rate} Hz")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..models import PRESETS, bundled_models, load

    print(f"{'name':16} {'preset':7} {'weights':7} {'parameters':>11} {'training audio':>15} "
          f"{'steps':>6}")
    for name in bundled_models():
        m = load(name)
        train = m.stats.get("training", {})
        print(f"{name:16} {m.config.preset:7} {'int8' if m.is_quantized else 'float32':7} "
              f"{m.decoder_parameters:11,} {m.stats.get('train_seconds', 0):14.0f}s "
              f"{train.get('steps', 0):6}")
    print(f"presets for new models: {', '.join(PRESETS)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_decoder
    from ..io import refuse_overwrite
    from ..models import load, model_file

    refuse_overwrite(Path(args.output), model_file(args.model))
    model = load(args.model)
    if args.format in ("nn-tilde", "chain-onnx"):
        from ..chain_graph import export_chain
        from ..nn_tilde import export_nn_tilde

        if args.format == "nn-tilde":
            path = export_nn_tilde(model, args.output)
            print(f"wrote {path}: {args.model}'s streaming engine for nn~ (methods forward, "
                  f"synthesize; {model.sample_rate} Hz)")
        else:
            path = export_chain(model, args.output)
            print(f"wrote {path}: {args.model}'s decoder + synthesis chain as one stateful "
                  "ONNX graph")
        return 0
    if args.int8 and not model.is_quantized:
        raise UserError(f"{args.model} is a float model: make an int8 one first with "
                        f"`fastddsp quantize {args.model} DATA_DIR -o MODEL-q.fddsp`")
    path = export_decoder(model, args.output, args.format)
    kind = "int8 " if model.is_quantized else ""
    print(f"wrote {path}: the {kind}decoder of {args.model} as {args.format}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from ..io import refuse_overwrite
    from ..models import load, model_file
    from ..quantize import quantize_model

    refuse_overwrite(Path(args.output), model_file(args.model))
    q = quantize_model(load(args.model), args.data_dir)
    path = q.save(args.output)
    print(f"wrote {path}: int8 decoder calibrated on the training clips of {args.data_dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import platform

    import torch

    from ..atomic import write_text_atomic
    from ..bench import bench_runtimes, bench_trackers, peak_memory
    from ..models import bundled_models, resolve

    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if not threads or min(threads) < 1:
        raise UserError("--threads must be positive integers, e.g. 1,2")
    if args.runs < 1 or args.seconds <= 0:
        raise UserError("--runs must be at least 1 and --seconds positive")
    quick = args.quick
    if args.stream:
        return _bench_stream(args, threads)
    names = args.models or (["violin-tiny"] if quick else list(bundled_models()) or ["tiny"])
    seconds = 1.0 if quick else args.seconds
    runs = 3 if quick else args.runs
    trackers = ["fast", "crepe-tiny"] + ([] if quick else ["crepe-full"])
    models = {name: resolve(name) for name in names}
    rows = []
    print(f"# {platform.machine()}, torch {torch.__version__}, {seconds:g} s of audio, "
          f"median of {runs} runs; x = audio seconds per wall second")
    print("# controls: a real performance (the built-in sung phrase's CREPE-full features and a "
          "melody with vibrato, slides and dynamics); '(steady note)': the synthetic best case")
    print(f"{'model':14} {'threads':>7} {'what':32} {'median ms':>10} {'x real time':>12}")
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for name, model in models.items():
            for t in bench_runtimes(model, seconds, runs):
                rows.append({"model": name, "threads": n_threads, **t.as_dict()})
                what = t.name + (" (steady note)" if t.controls == "steady" else "")
                print(f"{name:14} {n_threads:7} {what:32} {t.median_s * 1e3:10.2f} "
                      f"{t.realtime_factor:12,.0f}")
        if n_threads == threads[0]:
            print(f"# peak memory of a fresh process synthesizing {seconds:g} s end to end")
            for name in names:
                mem = peak_memory(name, seconds)
                rows.append({"model": name, "threads": 1, "name": "peak memory", **mem})
                what = f"peak RSS MiB (loaded {mem['rss_loaded_mib']:.0f})"
                print(f"{name:14} {1:7} {what:32} {mem['peak_rss_mib']:10.0f}")
        for t in bench_trackers(trackers, seconds, max(1, min(runs, 5))):
            rows.append({"model": "-", "threads": n_threads, **t.as_dict()})
            print(f"{'-':14} {n_threads:7} {t.name:32} {t.median_s * 1e3:10.2f} "
                  f"{t.realtime_factor:12,.1f}")
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from ..live import list_devices, meter, run_live, stream_file
    from ..models import load

    if args.list_devices:
        print(list_devices())
        return 0
    if bool(args.input_file) != bool(args.output_file):
        raise UserError("give both --input-file and --output-file, or neither")
    model = load(args.model)
    if args.input_file:
        run = stream_file(model, args.input_file, args.output_file, args.block, args.octave,
                          args.pitch_shift, args.loudness, keep_latency=args.keep_latency)
        t = run.timing
        print(f"wrote {run.output} ({run.seconds:.2f} s); latency {run.latency_samples} samples "
              f"({1000 * run.latency_samples / model.sample_rate:.1f} ms)"
              f"{'' if args.keep_latency else ', compensated'}")
        if t.get("blocks"):
            print(f"{t['blocks']} blocks of {t['block_ms']:.1f} ms: processing median "
                  f"{t['median_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms, max {t['max_ms']:.3f} ms, "
                  f"{t['over_budget']} over budget")
        return 0

    def report(state) -> None:
        print(f"\rin {state.level_db:6.1f} dBFS |{meter(state.level_db)}| xruns {state.xruns}"
              f"  blocks {state.blocks}", end="", flush=True)

    stream = model.stream(args.block, args.octave, args.pitch_shift, args.loudness)
    print(f"{args.model}: {model.sample_rate} Hz, blocks of {args.block} samples, latency "
          f"{stream.latency_ms:.1f} ms + buffering; Ctrl-C stops")
    state = run_live(stream, args.input, args.output, seconds=args.seconds, report=report)
    print(f"\nstopped after {state.blocks} blocks, {state.xruns} xruns")
    return 0


def _device(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def _bench_stream(args: argparse.Namespace, threads: list[int]) -> int:
    import torch

    from ..atomic import write_text_atomic
    from ..bench import bench_stream
    from ..models import resolve
    from ..stream import measure_latency

    names = args.models or ["violin-tiny", "violin-cnn"]
    n_blocks = 500 if args.quick else 10_000
    rows = []
    print(f"# streaming engine, {n_blocks} blocks each; times per block in ms")
    print(f"{'model':14} {'threads':>7} {'block':>5} {'budget':>7} {'median':>7} {'p99':>7} "
          f"{'max':>7} {'over':>5} {'latency declared/measured':>26}")
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for name in names:
            model = resolve(name)
            _, measured = measure_latency(model, 64)
            for block in (64, 128, 256):
                r = bench_stream(model, block, n_blocks)
                r.update(model=name, threads=n_threads,
                         latency_measured_ms=1e3 * measured / model.sample_rate)
                rows.append(r)
                print(f"{name:14} {n_threads:7} {block:5} {r['block_ms']:7.2f} "
                      f"{r['median_ms']:7.3f} {r['p99_ms']:7.3f} {r['max_ms']:7.3f} "
                      f"{r['over_budget']:5} {r['latency_ms']:12.1f} / "
                      f"{r['latency_measured_ms']:.1f} ms")
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    result = run_demo(args.output)
    print(f"rendered the melody and the sung phrase through {len(result.rows)} models "
          f"({', '.join(result.rows)})")
    if not result.trained:
        print("note: no pretrained model is bundled; these are untrained presets")
    print(f"open {result.folder / 'index.html'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import build_report

    r = build_report(args.eval_dirs, args.output, references=args.references, bench=args.bench,
                     measure=args.measure_speed, pitch=args.pitch)
    unknown = [label for label, speed in r.speeds.items() if speed is None]
    print(f"wrote {r.folder / 'index.html'}: {len(r.rows)} rows ({', '.join(r.rows)}) x "
          f"{len(r.clips)} clips")
    if unknown:
        print(f"note: no speed for {', '.join(unknown)} (give --bench FILE or --measure-speed)")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    from ..app.server import serve

    serve(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
          max_seconds=args.max_seconds, header_timeout=args.header_timeout,
          max_connections=args.max_connections)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ..features.pitch import TRACKERS
    from ..models.config import PRESETS

    p = _Parser(prog="fastddsp", description="Fast DDSP instrument synthesis.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("synth", help="features CSV (time_s,f0_hz,loudness_db) -> audio")
    s.add_argument("features", help="CSV with columns time_s,f0_hz,loudness_db at any frame rate")
    s.add_argument("--model", default="violin-tiny",
                   help="bundled model name or model file (default violin-tiny)")
    s.add_argument("-o", "--output", required=True, help="output audio file (.wav/.flac/.ogg)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("features", help="audio -> CSV of f0, confidence and loudness")
    s.add_argument("input", help="audio file (any format soundfile reads; any rate/channels)")
    s.add_argument("--pitch", default="crepe-full", choices=list(TRACKERS),
                   help="pitch tracker (default crepe-full)")
    s.add_argument("--frame-rate", type=float, default=250.0, help="frames/s (default 250)")
    s.add_argument("--sample-rate", type=int, default=16000,
                   help="rate the loudness is measured at; match the model's (default 16000)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    s.add_argument("-o", "--output", required=True, help="output CSV")
    s.set_defaults(func=cmd_features)

    s = sub.add_parser("prepare", help="audio folder -> training data folder")
    s.add_argument("audio_dir", help="folder searched recursively for audio files")
    s.add_argument("-o", "--output", required=True, help="data folder to write (or update)")
    s.add_argument("--pitch", default="crepe-full", choices=list(TRACKERS))
    s.add_argument("--sample-rate", type=int, default=16000)
    s.add_argument("--frame-rate", type=float, default=250.0)
    s.add_argument("--example-seconds", type=float, default=4.0)
    s.add_argument("--hop-seconds", type=float, default=1.0)
    s.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of files held out for validation (default 0.1, at least one)")
    s.add_argument("--val", action="append", metavar="FILE",
                   help="hold out this file (path relative to AUDIO_DIR); repeatable")
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("train", help="data folder -> model file (PyTorch Lightning)")
    s.add_argument("data_dir")
    s.add_argument("--preset", choices=list(PRESETS),
                   help="network size (default tiny, or the --init model's)")
    s.add_argument("-o", "--output", required=True, help="model file to write (.fddsp)")
    s.add_argument("--init", metavar="MODEL",
                   help="start from this model (file or bundled name): fine-tune its decoder "
                        "on DATA_DIR instead of training a new network")
    s.add_argument("--teacher", metavar="MODEL",
                   help="train also on clips this model (file or bundled name) plays from "
                        "varied copies of the training clips' controls: other pitches (-5.5 to "
                        "+2.5 semitones), tempi (x0.7 to 1.5), gains and longer rests; a smaller "
                        "model that generalizes better teaches a larger one (distillation)")
    s.add_argument("--teacher-variants", type=int, default=1, metavar="N",
                   help="teacher clips per training clip (default 1)")
    s.add_argument("--steps", type=int, default=3000)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--crop-seconds", type=float, default=1.0,
                   help="random crop of each 4 s example per step (0: whole examples)")
    s.add_argument("--lr", type=float, default=3e-4)
    s.add_argument("--decay-steps", type=int, default=10000,
                   help="learning rate x0.98 every this many steps (default 10000, as DDSP)")
    s.add_argument("--weight-decay", type=float, default=0.0, metavar="W",
                   help="decoupled weight decay of the decoder (as AdamW: each step shrinks its "
                        "weights by lr x W), against overfitting a few minutes of audio "
                        "(default 0: off)")
    s.add_argument("--pitch-shifts", default="-1,0,1",
                   help="semitone shifts of the training audio, comma-separated (default -1,0,1)")
    s.add_argument("--gain-db", type=float, default=6.0, metavar="DB",
                   help="random gain of each training example, up to this many dB either way, "
                        "its loudness moved to match (default 6; 0: off)")
    s.add_argument("--unvoiced-shift", type=float, default=0.0, metavar="SEMITONES",
                   help="move the f0 of unvoiced frames (rests hold the last note's f0) by a "
                        "random shift of up to this many semitones per example, so that rests "
                        "do not depend on the note before them (default 0: off)")
    s.add_argument("--max-harmonic-hz", type=float, metavar="HZ",
                   help="harmonic bandwidth: no harmonics above this frequency, the filtered "
                        "noise alone plays there (default: up to Nyquist, or the --init "
                        "model's; 0: Nyquist)")
    s.add_argument("--noise-floor", action=argparse.BooleanOptionalAction,
                   help="learn a constant background noise per noise band (the recording's "
                        "room tone, heard in rests) beside the decoder's noise (default: off, "
                        "or as the --init model)")
    s.add_argument("--reverb", choices=["decay", "free", "init"], default="decay",
                   help="room model while training: per-band decaying noise (default) or a "
                        "free impulse response, as DDSP (with --init: free continues the "
                        "model's own impulse response, decay learns a new room, init "
                        "continues the --init model's decaying room: recordings from the "
                        "same room)")
    s.add_argument("--ema", type=float, default=0.999,
                   help="the model file holds the exponential moving average of the weights "
                        "with this decay (default 0.999; 0: the last weights)")
    s.add_argument("--keep", choices=["last", "best"], default="last",
                   help="weights the model file holds: the last (default) or those of the "
                        "lowest validation loss (early stopping; needs validation files)")
    s.add_argument("--patience", type=int, metavar="N",
                   help="stop after N validations without a new lowest validation loss "
                        "(with --keep best: early stopping)")
    s.add_argument("--max-minutes", type=float,
                   help="stop after this much training time (counted across resumes) and "
                        "write the model as it is")
    s.add_argument("--val-every", type=int, default=250, help="steps between validations")
    s.add_argument("--checkpoint-every", type=int, default=100)
    s.add_argument("--run-dir", help="checkpoints and logs (default: OUTPUT with .run)")
    s.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--accelerator", default="cpu", help="Lightning accelerator: cpu, gpu, auto")
    s.add_argument("--devices", default="1", help="Lightning devices: a count, a list, or auto")
    s.add_argument("--precision", default="32-true", help="Lightning precision, e.g. bf16-mixed")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="resynthesize clips and score them against the originals")
    s.add_argument("model", help="model (name or file), or a folder of existing outputs")
    s.add_argument("source", help="prepared data folder, audio folder, or audio file")
    s.add_argument("-o", "--output", help="folder for the resynthesized wavs and scores.json")
    s.add_argument("--split", default="val", choices=["val", "train", "all"],
                   help="which files of a data folder (default val)")
    s.add_argument("--tag", help="outputs mode: score OUTPUTS/<stem>.<tag>.wav")
    s.add_argument("--pitch", default="crepe-tiny", choices=list(TRACKERS),
                   help="tracker used to compare f0 (default crepe-tiny)")
    s.add_argument("--features-pitch", default="crepe-full", choices=list(TRACKERS),
                   help="tracker for the features of plain audio sources (default crepe-full)")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("transfer", help="recordings -> the same melody on an instrument")
    s.add_argument("inputs", nargs="+", metavar="IN", help="audio files (any format/rate)")
    s.add_argument("--model", default="violin-tiny", help="bundled model name or model file")
    s.add_argument("-o", "--output", help="output file, or folder for several inputs "
                   "(default: IN's folder, IN.MODEL.wav)")
    s.add_argument("--octave", default="auto", help="auto (toward the training pitch) or N")
    s.add_argument("--pitch-shift", type=float, default=0.0, help="extra semitones")
    s.add_argument("--loudness", default="auto", help="auto (quantile mapping), none, or dB")
    s.add_argument("--pitch", default="crepe-tiny", choices=list(TRACKERS),
                   help="pitch tracker (default crepe-tiny: 4.5x real time on 1 thread)")
    s.add_argument("--sr", type=int, help="output sample rate (default: the input's)")
    s.set_defaults(func=cmd_transfer)

    s = sub.add_parser("render", help="MIDI file or text score -> audio")
    s.add_argument("score", help=".mid/.midi, or text: NOTE START_S DURATION_S [VELOCITY] per line")
    s.add_argument("--model", default="violin-tiny", help="bundled model name or model file")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--sr", type=int, help="output sample rate (default: the model's)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("export", help="a model's decoder, streaming engine or whole chain as a "
                       "graph for other hosts")
    s.add_argument("model", help="bundled model name or model file")
    s.add_argument("--format", default="onnx",
                   choices=["onnx", "torchscript", "nn-tilde", "chain-onnx"],
                   help="onnx/torchscript: the decoder; nn-tilde: the streaming engine as an "
                        "nn~ TorchScript module; chain-onnx: decoder + DSP as one stateful graph")
    s.add_argument("--int8", action="store_true",
                   help="require an int8 model (its quantized ONNX graph is written)")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("quantize", help="int8 static quantization of a CNN model's decoder")
    s.add_argument("model", help="a float cnn or tiny model (name or file)")
    s.add_argument("data_dir", help="prepared data folder: its training clips calibrate")
    s.add_argument("-o", "--output", required=True, help="int8 model file (.fddsp)")
    s.set_defaults(func=cmd_quantize)

    s = sub.add_parser("bench", help="real-time factors of models, runtimes and trackers")
    s.add_argument("--stream", action="store_true",
                   help="time the streaming engine per block (median, p99, max) instead")
    s.add_argument("--models", nargs="+", help="bundled names, files or presets "
                   "(default: every bundled model)")
    s.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    s.add_argument("--seconds", type=float, default=4.0, help="audio length (default 4)")
    s.add_argument("--runs", type=int, default=20, help="timed runs, median (default 20)")
    s.add_argument("--quick", action="store_true",
                   help="violin-tiny, 1 s, 3 runs, no CREPE-full: a smoke run for CI")
    s.add_argument("--json", help="also write the figures as JSON")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("live", help="microphone -> instrument in real time (or file -> file "
                       "through the same streaming engine)")
    s.add_argument("--model", default="violin-tiny", help="bundled model name or model file")
    s.add_argument("--input", type=_device, help="input device (index or name)")
    s.add_argument("--output", type=_device, help="output device (index or name)")
    s.add_argument("--block", type=int, default=256, help="block size in samples (default 256)")
    s.add_argument("--octave", type=int, default=0, help="octaves to shift the pitch")
    s.add_argument("--pitch-shift", type=float, default=0.0, help="semitones to add")
    s.add_argument("--loudness", type=float, default=0.0, help="dB to add to the loudness")
    s.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    s.add_argument("--input-file", help="read this audio file instead of a device")
    s.add_argument("--output-file", help="write here instead of a device (.wav, .flac, .ogg)")
    s.add_argument("--keep-latency", action="store_true",
                   help="file mode: keep the engine's latency in the output (as heard live)")
    s.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    s.set_defaults(func=cmd_live)

    s = sub.add_parser("models", help="list the bundled pretrained models")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("info", help="print a model's config and parameter count")
    s.add_argument("model", help=f"model file, bundled name, or preset ({', '.join(PRESETS)})")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("report", help="eval folders -> a static listening page (audio, "
                       "scores, spectrograms, f0/loudness plots)")
    s.add_argument("eval_dirs", nargs="+", metavar="EVAL_DIR",
                   help="folders written by `fastddsp eval ... -o EVAL_DIR`, one per model")
    s.add_argument("-o", "--output", required=True,
                   help="page folder to write (a previous report there is replaced)")
    s.add_argument("--references", help="the reference clips: audio folder or file, or prepared "
                   "data folder (default: the source each eval recorded)")
    s.add_argument("--bench", help="JSON of `fastddsp bench --json`: the speed of each model")
    s.add_argument("--measure-speed", action="store_true",
                   help="time the models the labels name when --bench has no figure for them")
    s.add_argument("--pitch", default="crepe-tiny", choices=list(TRACKERS),
                   help="pitch tracker for the f0 plots (default crepe-tiny)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("app", help="local web app: upload or record audio, hear it played by "
                       "an instrument")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument("--max-upload-mb", type=float, default=50.0,
                   help="largest upload accepted, in MB (default 50)")
    s.add_argument("--max-seconds", type=float, default=300.0,
                   help="longest recording accepted, in seconds (default 300)")
    s.add_argument("--header-timeout", type=float, default=10.0,
                   help="close a connection whose request headers take longer than this, in "
                        "seconds (default 10)")
    s.add_argument("--max-connections", type=int, default=64,
                   help="open connections served at once; a request beyond gets 503 "
                        "(default 64)")
    s.set_defaults(func=cmd_app)

    s = sub.add_parser("demo", help="render the built-in melody through the bundled models")
    s.add_argument("-o", "--output", default="fastddsp-demo", help="output folder")
    s.set_defaults(func=cmd_demo)
    return p


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UserError as e:
        print(f"fastddsp: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0
    except KeyboardInterrupt:
        print("fastddsp: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("fastddsp: error: out of memory", file=sys.stderr)
        return 1
    except Exception as e:  # an internal failure: still one line, still no partial output
        print(f"fastddsp: internal error: {type(e).__name__}: {e}".splitlines()[0],
              file=sys.stderr)
        return 1


def main() -> None:
    sys.exit(run())
