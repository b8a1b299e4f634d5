// Whole numbers on the page's canvas, as numeral/read.py finds them in a photo: connected
// components of the ink, specks dropped, the parts of one numeral merged, pieces smaller than
// half a numeral joined to their nearest neighbour, numerals that touch cut where the model
// reads the pieces most surely (among columns of thin ink near the even cuts), and pieces of a
// numeral the pen broke apart joined where the model reads them surer as one. The canvas is
// white ink on black, so the photo steps (inverting, flattening uneven light, Otsu's
// threshold) are not needed: ink is what is brighter than 20 % of the brightest.
// The settings are read.py's own, which numeral export --web writes into model.js
// (NUMERAL_READER): load model.js first.
"use strict";

(function (root) {
  const settings = root.NUMERAL_READER;
  if (!settings) throw new Error("reader.js needs NUMERAL_READER: load model.js before it");
  const {SPECK, ASPECT, MAX_PIECES, CUT_TRIES, LINE_PART, MERGE_WIDTH, MERGE_MOST} = settings;

  // 8-connected components of mask (W x H): a label per pixel (0: none) and each one's box.
  function components(mask, W, H) {
    const labels = new Int32Array(W * H), boxes = [], stack = [];
    for (let start = 0; start < W * H; start++) {
      if (!mask[start] || labels[start]) continue;
      const box = {label: boxes.length + 1, x0: W, y0: H, x1: 0, y1: 0, area: 0};
      labels[start] = box.label;
      stack.push(start);
      while (stack.length) {
        const p = stack.pop(), r = Math.floor(p / W), c = p % W;
        box.area++;
        box.x0 = Math.min(box.x0, c); box.x1 = Math.max(box.x1, c + 1);
        box.y0 = Math.min(box.y0, r); box.y1 = Math.max(box.y1, r + 1);
        for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) {
          const rr = r + dr, cc = c + dc, q = rr * W + cc;
          if (rr >= 0 && rr < H && cc >= 0 && cc < W && mask[q] && !labels[q]) {
            labels[q] = box.label; stack.push(q);
          }
        }
      }
      boxes.push(box);
    }
    return {labels, boxes};
  }

  function lineCount(boxes) {  // horizontal bands, boxes of one band overlapping vertically
    let bands = 0, bottom = -1;
    for (const b of [...boxes].sort((a, b2) => a.y0 - b2.y0)) {
      if (b.y0 >= bottom) bands++;
      bottom = Math.max(bottom, b.y1);
    }
    return bands;
  }

  const span = (g) => ({x0: Math.min(...g.map((b) => b.x0)), x1: Math.max(...g.map((b) => b.x1)),
                        y0: Math.min(...g.map((b) => b.y0)), y1: Math.max(...g.map((b) => b.y1))});

  function mergeOverlapping(boxes) {  // columns overlapping by 40 % of the narrower one
    const groups = [];
    let cur = null;
    for (const b of [...boxes].sort((a, b2) => a.x0 - b2.x0)) {
      if (cur) {
        const overlap = Math.min(b.x1, cur.x1) - Math.max(b.x0, cur.x0);
        if (overlap >= 0.4 * Math.min(b.x1 - b.x0, cur.x1 - cur.x0)) {
          groups[groups.length - 1].push(b);
          cur = {x0: Math.min(cur.x0, b.x0), x1: Math.max(cur.x1, b.x1)};
          continue;
        }
      }
      groups.push([b]);
      cur = {x0: b.x0, x1: b.x1};
    }
    return groups;
  }

  function attachFragments(groups, height) {
    const whole = groups.filter((g) => {
      const s = span(g);
      return Math.max(s.x1 - s.x0, s.y1 - s.y0) >= 0.5 * height;
    });
    if (!whole.length) return groups;
    for (const g of groups) {
      if (whole.includes(g)) continue;
      const s = span(g);
      let best = whole[0], gap = Infinity;
      for (const w of whole) {
        const t = span(w), d = Math.max(t.x0 - s.x1, s.x0 - t.x1, 0);
        if (d < gap) { gap = d; best = w; }
      }
      best.push(...g);
    }
    return whole.sort((a, b) => span(a).x0 - span(b).x0);
  }

  // The numerals of a grey image (white ink on black): [{x0, y0, x1, y1, grey}] left to right,
  // grey being the piece's own ink (w x h); or {reason} when there is no number on one line.
  function segment(grey, W, H, score) {
    let peak = 0;
    for (const v of grey) peak = Math.max(peak, v);
    if (peak < 40) return {reason: "no ink found: the pad is blank"};
    const mask = new Uint8Array(W * H);
    for (let i = 0; i < W * H; i++) mask[i] = grey[i] > 0.2 * peak ? 1 : 0;
    const {labels, boxes} = components(mask, W, H);
    const largest = Math.max(...boxes.map((b) => b.area));
    const kept = boxes.filter((b) => b.area >= Math.max(SPECK * largest, 6));
    const tallest = Math.max(...kept.map((b) => b.y1 - b.y0));  // a broken-off stroke is no line
    const lines = lineCount(kept.filter((b) => b.y1 - b.y0 >= LINE_PART * tallest));
    if (lines > 1) return {reason: `the writing is on ${lines} lines: write one line of numerals`};
    let groups = mergeOverlapping(kept);
    const heights = groups.map((g) => span(g).y1 - span(g).y0), top = Math.max(...heights);
    const tall = heights.filter((h) => h >= 0.5 * top).sort((a, b) => a - b);
    const height = tall.length % 2 ? tall[(tall.length - 1) / 2]
      : (tall[tall.length / 2 - 1] + tall[tall.length / 2]) / 2;
    groups = attachFragments(groups, height);
    const pieces = [];
    for (const g of groups) {
      const s = span(g), w = s.x1 - s.x0, h = s.y1 - s.y0, own = new Set(g.map((b) => b.label));
      const region = new Float64Array(w * h);
      for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
        const p = (s.y0 + r) * W + s.x0 + c;
        if (own.has(labels[p])) region[r * w + c] = grey[p];
      }
      pieces.push(...splitTouching(region, w, h, s.x0, s.y0, height, score));
    }
    if (pieces.length > MAX_PIECES) return {reason: `${pieces.length} marks: not a number`};
    return score ? mergeBroken(pieces, height, score) : pieces;
  }

  // The pieces of a numeral the pen broke apart, joined, as read.py's merge_broken: of all
  // the ways to group the pieces into numerals (each a run of at most MERGE_MOST neighbours no
  // wider together than MERGE_WIDTH numerals), the one the model reads most surely: the sum
  // over the pieces of the log probability of the numeral each is part of (geometric means; a
  // dynamic programme, left to right; a tie keeps them apart).
  // A model.js written before MERGE_WIDTH existed: nothing is joined.
  function mergeBroken(pieces, height, score) {
    if (!MERGE_WIDTH || !MERGE_MOST) return pieces;
    const n = pieces.length, runs = [];
    for (let j = 1; j <= n; j++) for (let i = j - 1; i >= Math.max(0, j - MERGE_MOST); i--) {
      const run = pieces.slice(i, j);
      const wide = Math.max(...run.map((p) => p.x1)) - Math.min(...run.map((p) => p.x0));
      if (j - i === 1 || wide <= MERGE_WIDTH * ASPECT * height)
        runs.push({i, j, piece: j - i === 1 ? pieces[i] : joined(run)});
    }
    if (runs.length === n) return pieces;
    for (const run of runs) {
      const s = score([run.piece]);
      run.sure = Number.isFinite(s) ? s : -1e9;  // a broken score: apart
    }
    const best = new Array(n + 1).fill(-Infinity), last = new Array(n + 1);
    best[0] = 0;
    for (const run of runs)  // by j; the single piece first, so that a tie keeps it
      if (best[run.i] + (run.j - run.i) * run.sure > best[run.j]) {
        best[run.j] = best[run.i] + (run.j - run.i) * run.sure; last[run.j] = run;
      }
    const out = [];
    for (let j = n; j > 0; j = last[j].i) out.unshift(last[j].piece);
    return out;
  }

  function joined(parts) {  // one piece made of several: their box, each one's ink where it lies
    const x0 = Math.min(...parts.map((p) => p.x0)), y0 = Math.min(...parts.map((p) => p.y0));
    const x1 = Math.max(...parts.map((p) => p.x1)), y1 = Math.max(...parts.map((p) => p.y1));
    const width = x1 - x0, height = y1 - y0, grey = new Float64Array(width * height);
    for (const p of parts) for (let r = 0; r < p.height; r++) for (let c = 0; c < p.width; c++) {
      const k = (p.y0 - y0 + r) * width + p.x0 - x0 + c;
      grey[k] = Math.max(grey[k], p.grey[r * p.width + c]);
    }
    return {x0, y0, x1, y1, width, height, grey};
  }

  // One numeral, or several that touch: a piece wider than a numeral is cut near each of its
  // even cuts, at the thinnest ink, or (given score, the recogniser's confidence in a list of
  // pieces) at whichever of 7 columns near there makes the surest pieces, as read.py does.
  function splitTouching(region, w, h, x, y, height, score) {
    const width = ASPECT * height, count = w > 1.5 * width ? Math.round(w / width) : 1;
    const columns = new Float64Array(w);
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) columns[c] += region[r * w + c];
    const windows = [];
    for (let j = 1; j < count; j++) {
      const target = j * w / count, lo = Math.floor(target - 0.25 * w / count);
      const hi = Math.floor(target + 0.25 * w / count) + 1;
      let thinnest = lo;
      for (let c = lo; c < hi; c++) if (columns[c] < columns[thinnest]) thinnest = c;
      const tries = new Set([thinnest]);
      for (let t = 0; t < CUT_TRIES; t++) tries.add(Math.floor(lo + t * (hi - 1 - lo) / (CUT_TRIES - 1)));
      windows.push([...tries].sort((a, b) => a - b));
    }
    let chosen = windows.map((win) => win.reduce((a, c) => (columns[c] < columns[a] ? c : a)));
    const piecesAt = (at) => cut(region, w, h, x, y, [0, ...at, w]);
    if (score) {  // each cut in turn, the others held, left to right
      windows.forEach((win, j) => {
        let best = chosen, top = -Infinity;
        for (const c of win) {
          const at = [...chosen.slice(0, j), c, ...chosen.slice(j + 1)], s = score(piecesAt(at));
          if (s > top) { top = s; best = at; }
        }
        chosen = best;
      });
    }
    return piecesAt(chosen);
  }

  function cut(region, w, h, x, y, cuts) {
    const out = [];
    for (let k = 0; k + 1 < cuts.length; k++) {
      const a = cuts[k], b = cuts[k + 1];
      let x0 = Infinity, x1 = -1, y0 = Infinity, y1 = -1;
      for (let r = 0; r < h; r++) for (let c = a; c < b; c++) if (region[r * w + c] > 0) {
        x0 = Math.min(x0, c); x1 = Math.max(x1, c + 1); y0 = Math.min(y0, r); y1 = Math.max(y1, r + 1);
      }
      if (x1 - x0 < 2) continue;
      const pw = x1 - x0, ph = y1 - y0, piece = new Float64Array(pw * ph);
      for (let r = 0; r < ph; r++) for (let c = 0; c < pw; c++)
        piece[r * pw + c] = region[(r + y0) * w + c + x0];
      out.push({x0: x + x0, y0: y + y0, x1: x + x1, y1: y + y1, width: pw, height: ph, grey: piece});
    }
    return out;
  }

  root.numeralReader = {segment, settings};
})(typeof window !== "undefined" ? window : globalThis);
