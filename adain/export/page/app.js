// The page of `python -m adain.export --web`: encoder.onnx and generator.onnx in onnxruntime-web,
// on WebGPU where the browser offers it, else WebAssembly; WebGPU that fails to load or on its
// first picture hands over to WebAssembly. Stills go image -> encoder (once per image) ->
// generator (again on every alpha move); live frames go camera -> encoder -> generator with the
// style encoded once. models.json says which network the pair is (AdaIN or MicroAST): its
// smallest input, and where each generator input comes from (the content's or the style's
// encoder outputs). Nothing is fetched from anywhere but this page's own folder.

import * as ort from './ort/ort.bundle.min.mjs';
import { fitSize, resize } from './resize.js';

const STILL_LIMIT = 512;       // the CLI's default --content-size / --style-size
const MAX_PIXELS = 89478485;   // Pillow's MAX_IMAGE_PIXELS, the CLI's limit
const LIVE_SIDES = [64, 96, 128, 160, 192, 256, 320, 384, 448, 512];  // shorter side of live frames
const LIVE_FRAME_MS = 100;     // live frames aim at 10 per second
const params = new URLSearchParams(location.search);  // ?backend=wasm|webgpu, ?live=N (fixed shorter side)

const $ = (id) => document.getElementById(id);
const ui = {
  content: $('content'), style: $('style'), alpha: $('alpha'), alphaValue: $('alpha-value'),
  result: $('result'), status: $('status'), download: $('download'), live: $('live'), fps: $('fps'),
  backend: $('backend'), demo: $('demo'), liveSize: $('live-size'), camera: $('camera'),
  contentPreview: $('content-preview'), stylePreview: $('style-preview'),
};

class PageError extends Error {}  // a message for #status as it is

const state = {
  spec: null,      // models.json
  encoder: null, generator: null, backend: '', loadError: null,
  spare: null,     // the model's bytes while WebGPU has not painted a picture: WebAssembly's, if it fails
  fallback: '',    // why WebGPU was left, for the next status lines
  content: null,  // {feeds: {generator input: Tensor}, w, h, name}
  style: null,    // {feeds: {generator input: Tensor}, name}
  live: null,     // {stream, side, ema, frames, last}
  resultName: '',
};

// An error's message on one line; onnxruntime's lose their C++ source location and signature.
const oneLine = (e) => String(e?.message ?? e).replace(/^.*ERROR_MESSAGE: (\S+:\d+ [^(]*\([^)]*\) )?/s, '')
  .split(/\s+/).join(' ').trim() || 'unknown error';
const stem = (name) => name.replace(/\.[^.]*$/, '') || name;

function show(text, kind) {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind;
}

function showError(e) {
  if (!(e instanceof PageError)) console.error(e);
  show(e instanceof PageError ? e.message : `error: ${oneLine(e)}`, 'error');
}

function backendLabel() {
  if (state.backend === 'webgpu') return 'WebGPU';
  const n = ort.env.wasm.numThreads;
  return `WebAssembly · ${n} thread${n === 1 ? '' : 's'}`;
}

// A line that starts with the backend; the first after a fallback also says why WebGPU was left.
function showBackend(text, kind) {
  show(`${backendLabel()} · ${text}${state.fallback ? ` · WebGPU failed: ${state.fallback}` : ''}`, kind);
}

function showFrame(ms, w, h) {
  showBackend(`${Math.round(ms)} ms · ${w}×${h}`, 'ok');
  state.fallback = '';
}

// One model call at a time: tasks run in order, and a failed one shows its line and lets the next run.
let chain = Promise.resolve();
function enqueue(task) {
  chain = chain.then(task).catch(showError);
  return chain;
}

// ---- the model ----

async function fetchFile(name) {
  let response;
  try {
    response = await fetch(name);
  } catch (e) {
    throw new PageError(`${name}: failed to load (${oneLine(e)})`);
  }
  if (!response.ok) throw new PageError(`${name}: failed to load (HTTP ${response.status})`);
  return response;
}

const fetchModel = async (name) => new Uint8Array(await (await fetchFile(name)).arrayBuffer());

async function fetchSpec() {
  try {
    return await (await fetchFile('models.json')).json();
  } catch (e) {
    throw e instanceof PageError ? e : new PageError(`models.json: not JSON (${oneLine(e)})`);
  }
}

// The smallest image side the model takes (before models.json has loaded: any).
const minSide = () => state.spec?.min_side ?? 1;

async function session(name, bytes, backend) {
  try {
    return await ort.InferenceSession.create(bytes, { executionProviders: [backend] });
  } catch (e) {
    throw new PageError(`${name}: failed to load on ${backend} (${oneLine(e)})`);
  }
}

async function backends() {
  const asked = params.get('backend');
  if (asked !== null) {
    if (asked !== 'wasm' && asked !== 'webgpu') throw new PageError(`?backend=${asked}: use wasm or webgpu`);
    return [asked];
  }
  const adapter = navigator.gpu && (await navigator.gpu.requestAdapter().catch(() => null));
  return adapter ? ['webgpu', 'wasm'] : ['wasm'];
}

// Both sessions on one backend, in state; the badge names it (its tooltip, a fallback's reason).
async function useBackend(backend, [encoderBytes, generatorBytes]) {
  const encoder = await session(state.spec.encoder.file, encoderBytes, backend);
  let generator;
  try {
    generator = await session(state.spec.generator.file, generatorBytes, backend);
  } catch (e) {
    await encoder.release();
    throw e;
  }
  Object.assign(state, { encoder, generator, backend });
  ui.backend.textContent = backendLabel();
  ui.backend.title = state.fallback && `WebGPU failed: ${state.fallback}`;
}

function failLoad(e) {
  state.loadError = e instanceof PageError ? e.message : oneLine(e);
  document.body.dataset.state = 'failed';
  ui.backend.textContent = 'no model';
  throw e;
}

async function loadModel() {
  document.body.dataset.state = 'loading';
  show('Loading the model…', 'info');
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
  // Threads need a cross-origin isolated page (COOP/COEP headers), which plain file servers do not send.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  try {
    state.spec = await fetchSpec();
    const bytes = await Promise.all([state.spec.encoder.file, state.spec.generator.file].map(fetchModel));
    const order = await backends();
    // WebAssembly first: in a worker, so that the page stays responsive while a frame computes.
    ort.env.wasm.proxy = order[0] === 'wasm';
    for (const [i, backend] of order.entries()) {
      try {
        await useBackend(backend, bytes);
        break;
      } catch (e) {
        if (i === order.length - 1) throw e;
        state.fallback = oneLine(e);
      }
    }
    state.spare = state.backend !== order.at(-1) ? bytes : null;
  } catch (e) {
    failLoad(e);
  }
  document.body.dataset.state = 'ready';
  const isolation = state.backend !== 'wasm' ? ''
    : self.crossOriginIsolated ? 'crossOriginIsolated · ' : 'not crossOriginIsolated (no COOP/COEP headers) · ';
  showBackend(`${isolation}ready: choose a content photo and a style image`, 'info');
}

// A model call. Until WebGPU has painted a picture, a call that fails there moves the page to
// WebAssembly (saying why) and runs again there on the same input.
async function run(sessionName, feeds) {
  try {
    return await state[sessionName].run(feeds);
  } catch (e) {
    if (!state.spare) throw e;
    await fallBack(oneLine(e));
    return state[sessionName].run(feeds);
  }
}

async function fallBack(reason) {
  const bytes = state.spare;
  state.spare = null;
  state.fallback = reason;
  show(`WebGPU failed: ${reason}; switching to WebAssembly…`, 'busy');
  const old = [state.encoder, state.generator];
  state.encoder = state.generator = null;
  await Promise.allSettled(old.map((s) => s.release()));
  try {
    await useBackend('wasm', bytes);
  } catch (e) {
    failLoad(e);
  }
}

function model(what) {
  if (state.generator) return;
  throw new PageError(`${what}: not stylized, ${state.loadError ? `the model did not load (${state.loadError})` : 'the model is still loading'}`);
}

const imageTensor = (input) => new ort.Tensor('float32', input.data, [1, input.h, input.w, 3]);

// ---- pictures in and out ----

const scratch = document.createElement('canvas').getContext('2d', { willReadFrequently: true });

function rgbaOf(source, w, h) {
  scratch.canvas.width = w;
  scratch.canvas.height = h;
  scratch.drawImage(source, 0, 0, w, h);
  return scratch.getImageData(0, 0, w, h).data;
}

// RGBA bytes as the model's float32 HWC input at the still size, as load_image makes it:
// 8-bit pixels resized as bytes; with transparency, composited over white in float, then resized.
function modelInput(rgba, w, h) {
  const [nw, nh] = fitSize(w, h, STILL_LIMIT);
  const n = w * h;
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) { opaque = false; break; }
  let rgb;
  if (opaque) {
    rgb = new Uint8ClampedArray(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = rgba[4 * i + c];
  } else {
    rgb = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const a = Math.fround(rgba[4 * i + 3] / 255);
      for (let c = 0; c < 3; c++) {
        rgb[3 * i + c] = Math.fround(Math.fround(Math.fround(rgba[4 * i + c] / 255) * a) + Math.fround(1 - a));
      }
    }
  }
  if (nw !== w || nh !== h) rgb = resize(rgb, w, h, 3, nw, nh);
  return { data: opaque ? Float32Array.from(rgb, (v) => v / 255) : rgb, w: nw, h: nh };
}

async function readImage(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', colorSpaceConversion: 'none' });
  } catch {
    throw new PageError(`${file.name}: not an image this browser can read`);
  }
  const { width: w, height: h } = bitmap;
  try {
    if (w < minSide() || h < minSide()) {
      throw new PageError(`${file.name}: too small (${w}×${h}); images need at least ${minSide()} pixels a side`);
    }
    if (w * h > MAX_PIXELS) throw new PageError(`${file.name}: image too large (${w}×${h}, limit ${MAX_PIXELS} pixels)`);
    return modelInput(rgbaOf(bitmap, w, h), w, h);
  } finally {
    bitmap.close();
  }
}

// The generator's [1, kh, kw, 3] output (k = 8 for AdaIN, 4 for MicroAST), cropped to w x h from
// the top-left, rounded to bytes as
// torchvision's save_image rounds (float32 x * 255 + 0.5, clamped, truncated).
function paint(image, w, h) {
  const [, , wk] = image.dims;
  const src = image.data;
  const out = new ImageData(w, h);
  const px = out.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * wk + x) * 3, o = (y * w + x) * 4;
      for (let c = 0; c < 3; c++) px[o + c] = Math.floor(Math.fround(Math.fround(src[i + c] * 255) + 0.5));
      px[o + 3] = 255;
    }
  }
  ui.result.width = w;
  ui.result.height = h;
  ui.result.getContext('2d').putImageData(out, 0, 0);
  document.body.classList.add('has-result');
}

// A tensor to feed again later: the WebAssembly worker takes (transfers) the buffers it is given.
const fresh = (t) => new ort.Tensor(t.type, t.data.slice(), t.dims);

// The generator inputs that come from an image's encoder outputs: `side` 'content' or 'style'.
function feedsOf(outputs, side) {
  const feeds = {};
  for (const [input, [from, output]] of Object.entries(state.spec.generator.feeds)) {
    if (from === side) feeds[input] = outputs[output];
  }
  return feeds;
}

async function generate(contentFeeds, w, h) {
  const feeds = { ...contentFeeds, ...state.style.feeds };
  for (const name of Object.keys(feeds)) feeds[name] = fresh(feeds[name]);
  feeds.alpha = new ort.Tensor('float32', new Float32Array([Number(ui.alpha.value)]), []);
  const { image } = await run('generator', feeds);
  paint(image, w, h);
  state.spare = null;  // the backend works: its failures from now on are errors, not a fallback
}

async function renderStill(start = performance.now()) {
  const { content, style } = state;
  if (!content || !style) {
    show(content ? 'Now choose a style image.' : 'Now choose a content photo.', 'info');
    return;
  }
  show(`Stylizing ${content.w}×${content.h}…`, 'busy');
  await generate(content.feeds, content.w, content.h);
  state.resultName = `${content.name}_stylized_${style.name}.png`;
  showFrame(performance.now() - start, content.w, content.h);
}

let renderQueued = false;
function requestRender() {  // alpha moves: one pending render at most
  if (renderQueued || state.live || !state.content || !state.style) return;
  renderQueued = true;
  enqueue(() => {
    renderQueued = false;
    return renderStill();
  });
}

function preview(img, file) {
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  img.closest('.drop').classList.add('filled');
}

async function encodeUpload(file, img) {
  const input = await readImage(file);
  model(file.name);
  preview(img, file);
  show(`Encoding ${file.name} (${input.w}×${input.h})…`, 'busy');
  return { input, codes: await run('encoder', { image: imageTensor(input) }) };
}

async function setContent(file) {
  const start = performance.now();
  const { input, codes } = await encodeUpload(file, ui.contentPreview);
  state.content = { feeds: feedsOf(codes, 'content'), w: input.w, h: input.h, name: stem(file.name) };
  if (!state.live) await renderStill(start);
}

async function setStyle(file) {
  const start = performance.now();
  const { codes } = await encodeUpload(file, ui.stylePreview);
  state.style = { feeds: feedsOf(codes, 'style'), name: stem(file.name) };
  if (!state.live) await renderStill(start);
}

// ---- live ----

function liveSize(vw, vh, side) {
  const scale = Math.min(side, vw, vh) / Math.min(vw, vh);
  return [Math.max(minSide(), Math.round(vw * scale)), Math.max(minSide(), Math.round(vh * scale))];
}

// Frame time (smoothed) against the aim: a smaller size when well over it, a larger one (up to the
// camera's own) when its expected time (by area) is still well under it.
function adapt(live, ms, cameraSide) {
  if (live.fixed) return;
  live.ema = live.ema === null ? ms : 0.7 * live.ema + 0.3 * ms;
  live.frames += 1;
  if (live.frames < 3) return;
  const i = LIVE_SIDES.indexOf(live.side);
  const up = live.side < cameraSide && LIVE_SIDES[i + 1];
  if (live.ema > 1.4 * LIVE_FRAME_MS && i > 0) live.side = LIVE_SIDES[i - 1];
  else if (up && live.ema * (up / live.side) ** 2 < 0.9 * LIVE_FRAME_MS) live.side = up;
  else return;
  live.ema = null;
  live.frames = 0;
}

async function liveFrame(live) {
  const { videoWidth: vw, videoHeight: vh } = ui.camera;
  if (state.live !== live || !vw || !vh) return;
  const [w, h] = liveSize(vw, vh, live.side);
  const start = performance.now();
  const rgba = rgbaOf(ui.camera, w, h);  // the browser's scaling: frames need speed, not the CLI's pixels
  const data = new Float32Array(w * h * 3);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) data[3 * i + c] = rgba[4 * i + c] / 255;
  const codes = await run('encoder', { image: imageTensor({ data, w, h }) });
  if (state.live !== live) return;
  await generate(feedsOf(codes, 'content'), w, h);
  const now = performance.now();
  const ms = now - start;
  if (live.last !== null) live.fps = live.fps === null ? 1000 / (now - live.last) : 0.8 * live.fps + 200 / (now - live.last);
  live.last = now;
  state.resultName = `webcam_stylized_${state.style.name}.png`;
  showFrame(ms, w, h);
  ui.fps.textContent = `${(live.fps ?? 1000 / ms).toFixed(1)} fps`;
  ui.liveSize.textContent = `live ${w}×${h}`;
  document.body.dataset.frames = String(++live.count);  // for scripts that time the page
  adapt(live, ms, Math.min(vw, vh));
}

async function liveLoop(live) {
  while (state.live === live) {
    await enqueue(() => liveFrame(live));
    await new Promise((r) => requestAnimationFrame(r));
  }
}

// The live frames' shorter side: ?live=N fixes it, else it starts where the backend usually keeps up.
function liveSide() {
  if (!params.has('live')) return { side: state.backend === 'webgpu' ? 256 : 128, fixed: false };
  const side = Number(params.get('live'));
  if (!Number.isInteger(side) || side < minSide()) {
    throw new PageError(`?live=${params.get('live')}: give a whole number of pixels, at least ${minSide()}`);
  }
  return { side, fixed: true };
}

async function startLive() {
  model('webcam');
  if (!state.style) throw new PageError('webcam: choose a style image first; live frames take its style');
  const { side, fixed } = liveSide();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    throw new PageError(`webcam: ${e.name === 'NotAllowedError' ? 'permission denied' : oneLine(e)}`);
  }
  ui.camera.srcObject = stream;
  await ui.camera.play();
  const live = { stream, side, fixed, ema: null, frames: 0, count: 0, last: null, fps: null };
  state.live = live;
  document.body.classList.add('live');
  ui.live.setAttribute('aria-pressed', 'true');
  liveLoop(live);
}

function stopLive() {
  const live = state.live;
  if (!live) return;
  state.live = null;
  live.stream.getTracks().forEach((t) => t.stop());
  ui.camera.srcObject = null;
  document.body.classList.remove('live');
  ui.live.setAttribute('aria-pressed', 'false');
  ui.liveSize.textContent = '';
  ui.fps.textContent = '– fps';
  if (state.content && state.style) enqueue(() => renderStill());
}

// ---- wiring ----

function onFile(input, use) {
  input.addEventListener('change', () => {
    const file = input.files[0];
    input.value = '';  // the same file chosen again is a new choice
    if (file) enqueue(() => use(file));
  });
  const zone = input.closest('.drop');
  for (const [type, on] of [['dragenter', true], ['dragleave', false], ['drop', false]]) {
    input.addEventListener(type, () => zone.classList.toggle('over', on));
  }
}

onFile(ui.content, setContent);
onFile(ui.style, setStyle);

ui.alpha.addEventListener('input', () => {
  ui.alphaValue.textContent = Number(ui.alpha.value).toFixed(2);
  requestRender();
});

ui.live.addEventListener('click', () => {
  if (state.live) return stopLive();
  ui.live.disabled = true;  // until the camera answers
  startLive().catch(showError).finally(() => { ui.live.disabled = false; });
});

ui.download.addEventListener('click', (event) => {
  if (!document.body.classList.contains('has-result')) {
    event.preventDefault();
    return;
  }
  ui.download.download = state.resultName || 'adain.png';
  ui.download.href = ui.result.toDataURL('image/png');
});

ui.demo.addEventListener('click', () => {
  for (const [name, use] of [['content.png', setContent], ['style.png', setStyle]]) {
    enqueue(async () => {
      const blob = await (await fetch(`demo/${name}`)).blob();
      await use(new File([blob], name, { type: blob.type }));
    });
  }
});

window.addEventListener('unhandledrejection', (event) => showError(event.reason));

enqueue(loadModel);
