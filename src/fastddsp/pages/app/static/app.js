// fastddsp app: fills the form from /api/options, records from the microphone as WAV (Web
// Audio, so the server needs no decoder beyond libsndfile), posts the form to /api/transfer
// and shows the result or the server's one-line error.
"use strict";

const $ = (id) => document.getElementById(id);
let options = null;
let recorded = null;      // a WAV Blob from the microphone, used instead of the file input
let recorder = null;      // {stream, context, node, chunks, rate, timer}
let resultUrl = null;

function showError(message) {
  clearResult();  // an error never sits under the previous recording's result
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearResult() {
  $("result").hidden = true;
  const audio = $("result-audio");
  audio.pause();
  audio.removeAttribute("src");
  $("download").removeAttribute("href");
  $("result-info").textContent = "";
  resultUrl = null;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(text) {
  $("status").textContent = text;
}

function fillModels() {
  const models = options.instruments[$("instrument").value] || [];
  const select = $("model");
  select.replaceChildren(...models.map((m) => new Option(m.variant, m.name)));
  const preferred = models.find((m) => m.name === options.default_model) ||
    models.find((m) => m.variant === "tiny");
  if (preferred) select.value = preferred.name;
}

async function loadOptions() {
  try {
    const response = await fetch("/api/options");
    if (!response.ok) throw new Error(`status ${response.status}`);
    options = await response.json();
  } catch (e) {
    showError("cannot reach the fastddsp server: is it still running?");
    return;
  }
  const instruments = Object.keys(options.instruments);
  if (!instruments.length) {
    showError("no pretrained model is bundled in this installation");
    $("submit").disabled = true;
    return;
  }
  $("instrument").replaceChildren(...instruments.map((name) => new Option(name, name)));
  const home = instruments.find((name) =>
    options.instruments[name].some((m) => m.name === options.default_model));
  if (home) $("instrument").value = home;
  fillModels();
  $("pitch").replaceChildren(...options.trackers.map((t) => {
    const o = new Option(t.name, t.name);
    o.title = t.description;
    return o;
  }));
  $("pitch").value = options.default_tracker;
  for (const n of options.octaves) $("octave").add(new Option(n > 0 ? `+${n}` : `${n}`, `${n}`));
  $("loudness-db").min = -options.max_loudness_db;
  $("loudness-db").max = options.max_loudness_db;
  $("limits").textContent = `Up to ${options.max_upload_mb} MB and ${options.max_seconds} s; ` +
    "wav, flac, ogg, mp3, aiff. The upload is deleted once the result is made.";
}

// --- recording -------------------------------------------------------------------------

function encodeWav(chunks, rate) {
  const n = chunks.reduce((sum, c) => sum + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true);
  view.setUint16(22, 1, true); view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * n, true);
  let offset = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, offset += 2) {
      const s = Math.max(-1, Math.min(1, c[i]));
      view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

async function startRecording() {
  clearError();
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    showError("this browser cannot record here (use a recent browser, on localhost or https)");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    showError(`cannot use the microphone: ${e.message || e.name}`);
    return;
  }
  const context = new AudioContext();
  let node;
  try {
    await context.audioWorklet.addModule("/static/recorder-worklet.js");
    node = new AudioWorkletNode(context, "recorder");
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    context.close();
    showError(`cannot record: ${e.message || e.name}`);
    return;
  }
  const source = context.createMediaStreamSource(stream);
  const mute = context.createGain();
  mute.gain.value = 0;
  const chunks = [];
  node.port.onmessage = (event) => chunks.push(event.data);
  source.connect(node).connect(mute).connect(context.destination);
  const started = performance.now();
  const timer = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    $("record-status").textContent = `recording… ${seconds.toFixed(1)} s`;
    if (options && seconds >= options.max_seconds) stopRecording();
  }, 100);
  recorder = { stream, context, node, chunks, rate: context.sampleRate, timer };
  $("record").disabled = true;
  $("stop").disabled = false;
}

async function stopRecording() {
  if (!recorder) return;
  const r = recorder;
  recorder = null;
  clearInterval(r.timer);
  r.stream.getTracks().forEach((t) => t.stop());
  r.node.port.onmessage = null;
  await r.context.close();
  recorded = encodeWav(r.chunks, r.rate);
  const seconds = r.chunks.reduce((s, c) => s + c.length, 0) / r.rate;
  $("record-status").textContent = `recorded ${seconds.toFixed(1)} s`;
  $("recording").src = URL.createObjectURL(recorded);
  $("recording").hidden = false;
  $("discard").hidden = false;
  $("record").disabled = false;
  $("stop").disabled = true;
}

function discardRecording() {
  recorded = null;
  $("recording").hidden = true;
  $("recording").removeAttribute("src");
  $("discard").hidden = true;
  $("record-status").textContent = "";
}

// --- transfer --------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  clearError();
  const file = recorded || $("file").files[0];
  if (!file) {
    showError("choose an audio file or record one first");
    return;
  }
  if (options && file.size > options.max_upload_mb * 1e6) {
    showError(`the file is larger than this app's limit of ${options.max_upload_mb} MB`);
    return;
  }
  const form = new FormData();
  form.append("file", file, recorded ? "recording.wav" : file.name);
  form.append("model", $("model").value);
  form.append("pitch", $("pitch").value);
  form.append("octave", $("octave").value);
  const mode = $("loudness-mode").value;
  form.append("loudness", mode === "db" ? $("loudness-db").value || "0" : mode);

  $("submit").disabled = true;
  setStatus("working…");
  let data = null;
  let status = 0;
  try {
    const response = await fetch("/api/transfer", { method: "POST", body: form });
    status = response.status;
    try { data = await response.json(); } catch (e) { data = null; }
  } catch (e) {
    showError("the server did not answer: is it still running?");
    setStatus("");
    $("submit").disabled = false;
    return;
  }
  $("submit").disabled = false;
  setStatus("");
  if (status !== 200 || !data || data.error) {
    showError((data && data.error) || `the server answered with status ${status}`);
    return;
  }
  showResult(data);
}

function showResult(data) {
  resultUrl = data.audio_url;
  const audio = $("result-audio");
  audio.src = resultUrl;
  $("download").href = data.download_url;
  $("download").setAttribute("download", data.filename);
  const a = data.adjustment;
  const octaves = a.octaves === 0 ? "no octave shift" : `${a.octaves > 0 ? "+" : ""}${a.octaves} octave(s)`;
  $("result-info").textContent = `${data.seconds.toFixed(2)} s at ${data.sample_rate} Hz · ` +
    `${data.model} · ${octaves} · loudness ${a.loudness} · ` +
    `${Math.round(100 * a.voiced_share)}% voiced (${data.pitch})`;
  $("plot-features").src = data.plots.features;
  $("plot-spectrogram").src = data.plots.spectrogram;
  $("result").hidden = false;
  setStatus("done");
}

window.addEventListener("DOMContentLoaded", () => {
  $("instrument").addEventListener("change", fillModels);
  $("loudness-mode").addEventListener("change", () => {
    $("loudness-db-label").hidden = $("loudness-mode").value !== "db";
  });
  $("record").addEventListener("click", startRecording);
  $("stop").addEventListener("click", stopRecording);
  $("discard").addEventListener("click", discardRecording);
  $("file").addEventListener("change", discardRecording);
  $("transfer-form").addEventListener("submit", submit);
  loadOptions();
});
