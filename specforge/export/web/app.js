// The page's script: loads the model with onnxruntime-web (WebAssembly) and classifies what is drawn or dropped.
// site.json (written by `specforge export --web`) gives the class names, the input shape and the mode:
//   "pad"      one-channel 28x28 models: a drawing pad; the drawing is fitted into a 20x20 box and centred
//              by its centre of mass in 28x28, as MNIST's digits were, before it reaches the model;
//   "picture"  other image models: a picked or dropped image, resized to the input's height and width;
//   "text"     text models: a text box, its text fed as it is (the model's graph vectorizes it) as it changes.
// A model of several outputs lists each one's classes under its name (site.json's "outputs": each output's name
// and class names); one sigmoid unit reads as classes 0 and 1.
import * as ort from './ort/ort.wasm.bundle.min.mjs';

const SHOWN = 3;             // classes listed, best first
const INVERT_ABOVE = 127;    // a one-channel image brighter than this on average is dark on light: inverted
const BOX = 20;              // MNIST: the digit fits in 20x20 ...
const SIDE = 28;             // ... with its centre of mass at the centre of 28x28
const INK = 10;              // pad pixels brighter than this belong to the drawing

const pad = document.getElementById('pad');
const textBox = document.getElementById('text');
const context = pad.getContext('2d', { willReadFrequently: true });
const top = document.getElementById('top');
const empty = document.getElementById('empty');
const status = document.getElementById('status');
let site, session, heads;
let running = false, dirty = false, runs = 0;

function luminance(rgba, i) {   // as Pillow's convert('L')
  return (rgba[4 * i] * 299 + rgba[4 * i + 1] * 587 + rgba[4 * i + 2] * 114) / 1000;
}

function clearPad() {
  context.fillStyle = site.mode === 'pad' ? '#000' : '#ddd';
  context.fillRect(0, 0, pad.width, pad.height);
}

// -- the pad's drawing as MNIST would have stored it ----------------------------------------------
function padGray() {
  const rgba = context.getImageData(0, 0, pad.width, pad.height).data;
  return Float32Array.from({ length: pad.width * pad.height }, (_, i) => luminance(rgba, i));
}

function inkBox(gray, width, height) {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (gray[y * width + x] > INK) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  return x1 < 0 ? null : { x0, y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

// Each target pixel is the mean of the source pixels it covers (at least one): an area average when
// shrinking, the nearest pixel when growing.
function resample(gray, stride, box, width, height) {
  const out = new Float32Array(width * height);
  const sx = box.width / width, sy = box.height / height;
  for (let ty = 0; ty < height; ty++) {
    const ya = box.y0 + Math.floor(ty * sy), yb = Math.max(ya + 1, box.y0 + Math.ceil((ty + 1) * sy));
    for (let tx = 0; tx < width; tx++) {
      const xa = box.x0 + Math.floor(tx * sx), xb = Math.max(xa + 1, box.x0 + Math.ceil((tx + 1) * sx));
      let sum = 0;
      for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) sum += gray[y * stride + x];
      out[ty * width + tx] = sum / ((yb - ya) * (xb - xa));
    }
  }
  return out;
}

function centred(digit, width, height) {
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = digit[y * width + x];
      mass += v; mx += v * (x + 0.5); my += v * (y + 0.5);
    }
  }
  const clamp = (v, room) => Math.min(Math.max(v, 0), room);
  const ox = clamp(Math.round(SIDE / 2 - mx / mass), SIDE - width);
  const oy = clamp(Math.round(SIDE / 2 - my / mass), SIDE - height);
  const out = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out[(y + oy) * SIDE + x + ox] = digit[y * width + x];
  }
  return out;
}

function padInput() {
  const gray = padGray();
  const box = inkBox(gray, pad.width, pad.height);
  if (box === null) return null;
  const scale = BOX / Math.max(box.width, box.height);
  const width = Math.max(1, Math.round(box.width * scale)), height = Math.max(1, Math.round(box.height * scale));
  return centred(resample(gray, pad.width, box, width, height), width, height);
}

// -- a picture at the model's input size ------------------------------------------------------------
let picture = null;

function pictureInput() {
  if (picture === null) return null;
  const [height, width, channels] = site.input_shape;
  const canvas = new OffscreenCanvas(width, height);
  const small = canvas.getContext('2d');
  small.drawImage(picture, 0, 0, width, height);
  const rgba = small.getImageData(0, 0, width, height).data;
  const input = new Float32Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    if (channels === 1) input[i] = luminance(rgba, i);
    else for (let c = 0; c < channels; c++) input[i * channels + c] = rgba[4 * i + c];
  }
  if (channels === 1 && input.reduce((a, b) => a + b, 0) / input.length > INVERT_ABOVE) {
    for (let i = 0; i < input.length; i++) input[i] = 255 - input[i];
  }
  return input;
}

// -- the text box's document: nothing to classify while it holds no words -------------------------------
function textInput() {
  return textBox.value.trim() === '' ? null : textBox.value;
}

// -- classifying ---------------------------------------------------------------------------------------
async function classify(input) {
  const tensor = site.mode === 'text'
    ? new ort.Tensor('string', [input], [1])
    : new ort.Tensor('float32', input, [1, ...site.input_shape]);
  const outputs = await session.run({ [session.inputNames[0]]: tensor });
  return heads.map((head) => {
    const scores = Array.from(outputs[head.name].data);
    return scores.length === 1 ? [1 - scores[0], scores[0]] : scores;
  });
}

// Where each output's classes are listed: the one list, or for a model of several a list under each output's name.
function makeHeads(outputNames) {
  if (!site.outputs) {
    const name = outputNames.includes('probabilities') ? 'probabilities' : outputNames[0];
    return [{ name, classes: site.classes, list: top }];
  }
  top.hidden = true;
  return site.outputs.map(({ name, classes }) => {
    const part = document.createElement('div');
    part.className = 'head';
    part.dataset.output = name;
    const heading = document.createElement('h3');
    heading.textContent = name;
    const list = document.createElement('ol');
    part.append(heading, list);
    status.before(part);
    return { name, classes, list };
  });
}

// The listed classes, one array of items per output (none: the "nothing to classify" line instead).
function list(rows) {
  heads.forEach((head, index) => head.list.replaceChildren(...(rows[index] ?? [])));
  empty.hidden = rows.length > 0;
}

function show(scores) {
  list(scores.map((probabilities, index) => items(probabilities, heads[index].classes)));
}

function items(probabilities, classes) {
  return probabilities.map((p, index) => ({ p, index }))
    .sort((a, b) => b.p - a.p).slice(0, SHOWN).map(({ p, index }) => {
      const item = document.createElement('li');
      item.dataset.class = String(index);
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = classes[index] ?? String(index);
      const bar = document.createElement('span');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      bar.append(fill);
      const value = document.createElement('span');
      value.className = 'probability';
      value.textContent = `${(100 * p).toFixed(1)}%`;
      item.append(name, bar, value);
      return item;
    });
}

// Runs until the input stops changing; `data-runs` on <body> counts finished updates.
async function update() {
  dirty = true;
  if (running) return;
  running = true;
  document.body.dataset.state = 'busy';
  try {
    while (dirty) {
      dirty = false;
      const input = { text: textInput, pad: padInput, picture: pictureInput }[site.mode]();
      if (input === null) list([]);
      else show(await classify(input));
    }
  } catch (error) {
    status.textContent = `Cannot classify: ${error.message}`;
    console.error(error);
  } finally {
    running = false;
    document.body.dataset.runs = String(++runs);
    document.body.dataset.state = 'ready';
  }
}

// -- input: drawing, picking, dropping ---------------------------------------------------------------
function point(event) {
  const rect = pad.getBoundingClientRect();
  return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
}

function enableDrawing() {
  let drawing = false;
  context.strokeStyle = context.fillStyle = '#fff';
  pad.addEventListener('pointerdown', (event) => {
    drawing = true;
    status.textContent = '';
    pad.setPointerCapture(event.pointerId);
    const [x, y] = point(event);
    context.beginPath();
    context.arc(x, y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
    context.beginPath();
    context.moveTo(x, y);
    update();
  });
  pad.addEventListener('pointermove', (event) => {
    if (!drawing) return;
    const [x, y] = point(event);
    context.lineTo(x, y);
    context.stroke();
    update();
  });
  const stop = () => { drawing = false; };
  pad.addEventListener('pointerup', stop);
  pad.addEventListener('pointercancel', stop);
  document.getElementById('clear').addEventListener('click', () => {
    status.textContent = '';
    clearPad();
    context.fillStyle = '#fff';
    update();
  });
}

// A picked or dropped image: on the pad (scaled to fit, dark-on-light inverted) or as the picture.
async function open(file) {
  if (!file) return;
  let image;
  try {
    image = await createImageBitmap(file);
  } catch {
    // Nothing of the previous image stays beside the error: the pad or picture and its classes are cleared.
    picture = null;
    clearPad();
    if (site.mode === 'pad') context.fillStyle = '#fff';
    list([]);
    status.textContent = `${file.name} is not an image this browser can read.`;
    return;
  }
  status.textContent = '';
  picture = image;
  const scale = Math.min(pad.width / image.width, pad.height / image.height);
  const [w, h] = [image.width * scale, image.height * scale];
  clearPad();
  context.imageSmoothingEnabled = false;
  context.drawImage(image, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  if (site.mode === 'pad') {
    const pixels = context.getImageData(0, 0, pad.width, pad.height);
    const gray = padGray();
    if (gray.reduce((a, b) => a + b, 0) / gray.length > INVERT_ABOVE) {
      for (let i = 0; i < gray.length; i++) {
        pixels.data[4 * i] = pixels.data[4 * i + 1] = pixels.data[4 * i + 2] = 255 - gray[i];
      }
      context.putImageData(pixels, 0, 0);
    }
    context.fillStyle = '#fff';
  }
  update();
}

function enableOpening() {
  const input = document.getElementById('file');
  input.addEventListener('change', () => { open(input.files[0]); input.value = ''; });
  pad.addEventListener('dragover', (event) => { event.preventDefault(); document.body.classList.add('dragging'); });
  pad.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  pad.addEventListener('drop', (event) => {
    event.preventDefault();
    document.body.classList.remove('dragging');
    open(event.dataTransfer.files[0]);
  });
}

async function main() {
  site = await (await fetch('site.json')).json();
  const kind = site.mode === 'text' ? 'text' : 'image';
  document.title = `${site.name}: ${kind} classifier`;
  document.querySelector('.kicker').textContent = `${kind[0].toUpperCase()}${kind.slice(1)} classifier, running in your browser`;
  document.body.classList.add(site.mode);
  document.getElementById('title').textContent = site.name;
  document.getElementById('hint').textContent = {
    pad: 'Draw a digit with the mouse or a finger, or open or drop an image onto the pad.',
    picture: 'Open an image, or drop one onto the box.',
    text: 'Type or paste a text: the classes follow as you type.',
  }[site.mode];
  context.lineWidth = pad.width / 12;
  context.lineCap = context.lineJoin = 'round';
  clearPad();
  ort.env.wasm.numThreads = 1;   // threads need cross-origin isolation, which a plain static server does not give
  session = await ort.InferenceSession.create('model.onnx', { executionProviders: ['wasm'] });
  heads = makeHeads(session.outputNames);
  if (site.mode === 'text') textBox.addEventListener('input', update);
  else {
    if (site.mode === 'pad') enableDrawing();
    enableOpening();
  }
  document.body.dataset.runs = '0';
  document.body.dataset.state = 'ready';
}

main().catch((error) => {
  status.textContent = `Cannot load the model: ${error.message}`;
  document.body.dataset.state = 'failed';
  console.error(error);
});
