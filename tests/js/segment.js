// node tests/js/segment.js SITE_DIR: reader.js on synthetic ink, the answers as JSON on stdout.
const fs = require("fs");
eval(fs.readFileSync(process.argv[2] + "/model.js", "utf8"));  // the reader's settings
eval(fs.readFileSync(process.argv[2] + "/reader.js", "utf8"));
const W = 300, H = 120;
function blank() { return new Float64Array(W * H); }
function ring(grey, cx, cy, r) {  // a ring of ink, 8 pixels thick
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const d = Math.hypot(x - cx, y - cy);
    if (d > r - 8 && d < r) grey[y * W + x] = 255;
  }
  return grey;
}
const two = ring(ring(blank(), 100, 60, 40), 178, 60, 40);  // touching: one component
const apart = ring(ring(blank(), 60, 60, 40), 220, 60, 40);
const boxes = (found) => Array.isArray(found) ? found.map((p) => [p.x0, p.x1]) : found;
const broken = ring(blank(), 100, 60, 40);  // a ring the pen broke down its middle
for (let y = 0; y < H; y++) for (let x = 98; x < 103; x++) broken[y * W + x] = 0;
const wideIsSure = (pieces) => pieces.reduce((t, p) => t + (p.width > 60 ? 0 : -1), 0);
const preferRight = (pieces) => pieces.length === 2 ? pieces[0].x1 : -1e9;  // a cut far right
console.log(JSON.stringify({
  settings: numeralReader.settings,
  touching: boxes(numeralReader.segment(two, W, H)),
  apart: boxes(numeralReader.segment(apart, W, H)),
  scored: boxes(numeralReader.segment(two, W, H, preferRight)),
  blank: numeralReader.segment(blank(), W, H),
  broken: boxes(numeralReader.segment(broken, W, H)),
  joined: boxes(numeralReader.segment(broken, W, H, wideIsSure)),
  apartScored: boxes(numeralReader.segment(apart, W, H, wideIsSure)),
  evenlySure: boxes(numeralReader.segment(broken, W, H, (ps) => -1.05 * ps.length)),
  stroke: boxes(numeralReader.segment((() => { const g = ring(blank(), 60, 70, 40);
    for (let y = 8; y < 20; y++) for (let x = 50; x < 70; x++) g[y * W + x] = 255; return g; })(), W, H)),
  lines: numeralReader.segment((() => { const g = blank(); ring(g, 60, 20, 18); ring(g, 60, 100, 18); return g; })(), W, H),
}));
