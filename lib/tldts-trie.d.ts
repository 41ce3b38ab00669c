// tldts's rule trie, which lib/public-suffix.ts reads: tldts ships its declarations under
// dist/types and its CommonJS build under dist/cjs, and TypeScript does not pair the two.
declare module "tldts/dist/cjs/src/data/trie.js" {
  export * from "tldts/dist/types/src/data/trie.js";
}
