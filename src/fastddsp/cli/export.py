"""`fastddsp export`: a model's decoder, streaming engine or whole chain as a graph."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("export", help="a model's decoder, streaming engine or whole "
                              "chain as a graph for other hosts")
    s.add_argument("model", help="bundled model name or model file")
    s.add_argument("--format", default="onnx",
                   choices=["onnx", "torchscript", "nn-tilde", "chain-onnx"],
                   help="onnx/torchscript: the decoder; nn-tilde: the streaming engine as an "
                        "nn~ TorchScript module; chain-onnx: decoder + DSP as one stateful graph "
                        "(default onnx)")
    s.add_argument("--int8", action="store_true",
                   help="require an int8 model (its quantized ONNX graph is written)")
    s.add_argument("--voices", type=int, default=8,
                   help="nn-tilde: voices of its polyphonic synthesize_voices method "
                   "(1..64, default 8)")
    s.add_argument("-o", "--output", required=True, help="file to write")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import refuse_overwrite
    from ..models import load, model_file
    from ..realtime.chain_graph import export_chain
    from ..realtime.export import export_decoder
    from ..realtime.nn_tilde import export_nn_tilde

    refuse_overwrite(Path(args.output), model_file(args.model))
    model = load(args.model)
    if args.format == "nn-tilde":
        path = export_nn_tilde(model, args.output, args.voices)
        print(f"wrote {path}: {args.model}'s streaming engine for nn~ (methods forward, "
              f"synthesize, synthesize_voices with {args.voices} voices; "
              f"{model.sample_rate} Hz)")
        return 0
    if args.format == "chain-onnx":
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
