// Passes the microphone's samples (mixed to mono) to the page, block by block.
class RecorderProcessor extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length) {
      const mono = new Float32Array(channels[0].length);
      for (const ch of channels) {
        for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / channels.length;
      }
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
}
registerProcessor("recorder", RecorderProcessor);
