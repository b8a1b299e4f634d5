// node tests/js/predict.js SITE_DIR INPUTS.json OUT.json: numeral.js's probabilities for each
// input row, as the exported page computes them (tests/test_export.py compares them).
const fs = require("fs");
const [site, inputs, output] = process.argv.slice(2);
eval(fs.readFileSync(site + "/model.js", "utf8"));
eval(fs.readFileSync(site + "/numeral.js", "utf8"));
const model = numeral.load(globalThis.NUMERAL_MODEL);
const rows = JSON.parse(fs.readFileSync(inputs, "utf8"));
fs.writeFileSync(output, JSON.stringify(rows.map((row) => Array.from(numeral.predict(model, row)))));
