// "Did you mean ...?" for unknown keys and names: the nearest candidate by edit distance,
// offered only when it is plausibly a typo.

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate within a distance that still reads as a typo, or undefined. */
function nearest(word: string, candidates: readonly string[]): string | undefined {
  // One or two characters are no typo of anything in particular: ".." and "" are two edits
  // from every two-letter name.
  if (word.length < 3) return undefined;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  // A third of the word, two edits for a short one (a swap, "bsae", is two), but never
  // more than half of it: "zzu" is another word, not "gu" mistyped.
  const limit = Math.min(Math.floor(word.length / 2), Math.max(2, Math.floor(word.length / 3)));
  return bestD <= limit ? best : undefined;
}

/** " (did you mean "x"?)" or "". Agents and bottles are named by file without ".md", so a name written as the file is matched by its stem. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const stem = word.endsWith(".md") ? word.slice(0, -3) : word;
  if (stem !== word && candidates.includes(stem)) return ` (did you mean "${stem}"? names leave out .md)`;
  const n = nearest(word, candidates);
  return n ? ` (did you mean "${n}"?)` : "";
}
