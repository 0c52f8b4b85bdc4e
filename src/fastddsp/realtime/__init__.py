"""Real time: the streaming engine (`Stream`), live audio, and exports for other hosts (ONNX /
TorchScript decoders, the chain graph, nn~)."""
