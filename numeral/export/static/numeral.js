// numeral's forward pass in JavaScript: the same layers as numeral.nn, evaluation mode.
// A model is what numeral export --web writes into model.js: the ensemble's networks, each a
// list of layers with their arrays (float32, base64). A tensor here is a Float64Array with a
// shape [C, H, W] or [F], one sample at a time (the page recognises one drawing at a time).
"use strict";

(function (root) {
  function decode(b64) {
    const bytes = typeof Uint8Array.fromBase64 === "function" ? Uint8Array.fromBase64(b64)
      : typeof Buffer !== "undefined" ? Uint8Array.from(Buffer.from(b64, "base64"))
      : Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return Float64Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
  }

  // ---------------------------------------------------------------- input transforms
  function gamma(x, g) { return x.map((v) => Math.pow(Math.max(v, 0), g)); }

  // Bilinear read at (x, y), pixel centres at integers; coordinates clipped to
  // [-1, side - 0.001] and everything outside the frame black, as numeral's sampler.
  function sample(img, side, x, y) {
    x = Math.min(Math.max(x, -1), side - 0.001);
    y = Math.min(Math.max(y, -1), side - 0.001);
    const x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0;
    const at = (r, c) => (r >= 0 && r < side && c >= 0 && c < side ? img[r * side + c] : 0);
    const top = at(y0, x0) + fx * (at(y0, x0 + 1) - at(y0, x0));
    const bottom = at(y0 + 1, x0) + fx * (at(y0 + 1, x0 + 1) - at(y0 + 1, x0));
    return top + fy * (bottom - top);
  }

  // The shear that makes the principal axis vertical: x' = x + alpha (y - centre).
  function deskew(img, side) {
    let mass = 0, sy = 0, sx = 0;
    for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
      const v = img[r * side + c]; mass += v; sy += v * r; sx += v * c;
    }
    mass += 1.1754943508222875e-38;
    const cy = sy / mass, cx = sx / mass;
    let mu02 = 0, mu11 = 0;
    for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
      const v = img[r * side + c];
      mu02 += v * (r - cy) * (r - cy); mu11 += v * (r - cy) * (c - cx);
    }
    const alpha = (mu11 / mass) / Math.max(mu02 / mass, 1e-3), centre = (side - 1) / 2;
    const out = new Float64Array(side * side);
    for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
      const oy = r - centre, ox = c - centre;
      out[r * side + c] = sample(img, side, ox + alpha * oy + cx, oy + cy);
    }
    return out;
  }

  // Four planes (0, 45, 90, 135 degrees) of 2x2 cells: how much edge runs each way.
  function orientation(img, side) {
    const half = side / 2, out = new Float64Array(4 * half * half);
    const at = (r, c) => (r >= 0 && r < side && c >= 0 && c < side ? img[r * side + c] : 0);
    for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
      const gx = (at(r - 1, c + 1) + 2 * at(r, c + 1) + at(r + 1, c + 1)
                - at(r - 1, c - 1) - 2 * at(r, c - 1) - at(r + 1, c - 1)) / 4;
      const gy = (at(r + 1, c - 1) + 2 * at(r + 1, c) + at(r + 1, c + 1)
                - at(r - 1, c - 1) - 2 * at(r - 1, c) - at(r - 1, c + 1)) / 4;
      const magnitude = Math.sqrt(gx * gx + gy * gy);
      if (magnitude === 0) continue;
      const direction = Math.atan2(gx * gy, (gx * gx - gy * gy) * 0.5) * (2 / Math.PI);
      [0, 1, 2, -1].forEach((at2, plane) => {
        let d = Math.abs(direction - at2);
        d = Math.min(d, 4 - d);
        const share = Math.max(1 - d, 0);
        if (share > 0) out[plane * half * half + (r >> 1) * half + (c >> 1)] += share * magnitude;
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- learning layers
  function dense(x, W, b, fanIn, fanOut) {  // y = x W + b, W (fanIn, fanOut) row-major
    const y = Float64Array.from(b);
    for (let i = 0; i < fanIn; i++) {
      const v = x[i];
      if (v === 0) continue;  // drawings are mostly black: skip the zero inputs
      const row = i * fanOut;
      for (let j = 0; j < fanOut; j++) y[j] += v * W[row + j];
    }
    return y;
  }

  function conv(x, shape, L) {  // cross-correlation, P zeros around, stride S
    const [C, H, Wd] = shape, K = L.kernel, S = L.stride, P = L.pad, O = L.out_channels;
    const Ho = Math.floor((H + 2 * P - K) / S) + 1, Wo = Math.floor((Wd + 2 * P - K) / S) + 1;
    const y = new Float64Array(O * Ho * Wo);
    for (let o = 0; o < O; o++) for (let r = 0; r < Ho; r++) for (let s = 0; s < Wo; s++) {
      let sum = L.b[o];
      for (let c = 0; c < C; c++) for (let u = 0; u < K; u++) {
        const row = r * S + u - P;
        if (row < 0 || row >= H) continue;
        for (let v = 0; v < K; v++) {
          const col = s * S + v - P;
          if (col < 0 || col >= Wd) continue;
          sum += L.W[((o * C + c) * K + u) * K + v] * x[(c * H + row) * Wd + col];
        }
      }
      y[(o * Ho + r) * Wo + s] = sum;
    }
    return [y, [O, Ho, Wo]];
  }

  function pool(x, shape, K, S, max) {  // windows that do not fit are left out
    const [C, H, W] = shape, Ho = Math.floor((H - K) / S) + 1, Wo = Math.floor((W - K) / S) + 1;
    const y = new Float64Array(C * Ho * Wo);
    for (let c = 0; c < C; c++) for (let r = 0; r < Ho; r++) for (let s = 0; s < Wo; s++) {
      let acc = max ? -Infinity : 0;
      for (let u = 0; u < K; u++) for (let v = 0; v < K; v++) {
        const value = x[(c * H + r * S + u) * W + s * S + v];
        acc = max ? Math.max(acc, value) : acc + value;
      }
      y[(c * Ho + r) * Wo + s] = max ? acc : acc / (K * K);
    }
    return [y, [C, Ho, Wo]];
  }

  function globalAvgPool(x, shape) {
    const [C, H, W] = shape, y = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let i = 0; i < H * W; i++) s += x[c * H * W + i];
      y[c] = s / (H * W);
    }
    return [y, [C]];
  }

  function batchnorm(x, shape, L) {  // y = gamma (x - mean) / sqrt(var + eps) + beta, per channel
    const per = x.length / L.gamma.length, y = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const f = Math.floor(i / per);
      y[i] = L.gamma[f] * (x[i] - L.mean[f]) / Math.sqrt(L.var[f] + L.eps) + L.beta[f];
    }
    return [y, shape];
  }

  const each = (f) => (x, shape) => [x.map(f), shape];  // element-wise
  const unchanged = (x, shape) => [x, shape];

  // The forward pass of each type, as the layers describe themselves (their export() in
  // numeral.nn.layers, written into model.js): (x, shape, L) -> [y, y's shape]. The exporter
  // reads this table's keys to know which types the page can run.
  const FORWARD = {
    gamma: (x, shape, L) => [gamma(x, L.gamma), shape],
    deskew: (x, shape, L) => [deskew(x, L.side), shape],
    orientation: (x, shape, L) => [orientation(x, L.side), L.out_shape],
    standardize: (x, shape, L) => [x.map((v, i) => (v - L.mean[i]) * L.scale[i]), shape],
    dense: (x, shape, L) => [dense(x, L.W, L.b, x.length, L.b.length), [L.b.length]],
    conv: (x, shape, L) => conv(x, shape, L),
    maxpool: (x, shape, L) => pool(x, shape, L.kernel, L.stride, true),
    avgpool: (x, shape, L) => pool(x, shape, L.kernel, L.stride, false),
    globalavgpool: globalAvgPool,
    batchnorm: batchnorm,
    flatten: (x) => [x, [x.length]],
    dropout: unchanged,  // evaluation mode
    identity: unchanged,
    sigmoid: each((z) => 1 / (1 + Math.exp(-z))),
    tanh: each(Math.tanh),
    relu: each((z) => Math.max(z, 0)),
    leaky_relu: (x, shape, L) => [x.map((z) => Math.max(z, z * L.slope)), shape],
  };

  function layer(x, shape, L) {
    if (!(L.type in FORWARD)) throw new Error("numeral.js does not know the layer " + L.type);
    return FORWARD[L.type](x, shape, L);
  }

  function softmax(z) {
    const top = Math.max(...z), e = z.map((v) => Math.exp(v - top));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / total);
  }

  // Decode a model as model.js holds it (once).
  function load(model) {
    for (const net of model.members) for (const L of [...net.inputs, ...net.layers])
      for (const key of L.arrays || []) L[key] = decode(L[key]);
    return model;
  }

  // Class probabilities of one input row (784 values in [0, 1]): each network's softmax,
  // averaged over an ensemble, at the model's calibrated temperature (p ** (1/T), summing to
  // 1: numeral/nn/calibration.py; 1 for a model file that records none).
  function predict(model, input) {
    const total = new Float64Array(model.classes.length);
    for (const net of model.members) {
      let x = Float64Array.from(input), shape = net.input_shape;
      for (const L of net.inputs) [x, shape] = layer(x, shape, L);
      shape = net.body_shape;  // the learning layers' view of x
      for (const L of net.layers) [x, shape] = layer(x, shape, L);
      softmax(x).forEach((p, i) => { total[i] += p / model.members.length; });
    }
    const t = model.temperature || 1;
    if (t === 1) return total;
    let sum = 0;
    total.forEach((p, i) => { total[i] = Math.pow(Math.max(p, 1e-12), 1 / t); sum += total[i]; });
    return total.map((p) => p / sum);
  }

  root.numeral = { load, predict, types: Object.keys(FORWARD) };
})(typeof window !== "undefined" ? window : globalThis);
