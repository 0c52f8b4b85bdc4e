"""Offline jobs over the models: synthesis from a features file, scores and MIDI, timbre
transfer."""
