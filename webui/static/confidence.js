// One confidence scale for every page: at or above the review threshold is "high", above half
// of it "mid", below that "low" (the same classes, and so the same colours, on the jobs, job and
// review pages).

/** "high" | "mid" | "low" | "unknown" for a model confidence against the review threshold. */
export function confidenceLevel(confidence, threshold) {
  if (confidence === null || confidence === undefined) return "unknown";
  return confidence >= threshold ? "high" : confidence >= threshold / 2 ? "mid" : "low";
}

/** A confidence as a whole percentage, or a dash when there is none. */
export function percent(confidence) {
  return confidence === null || confidence === undefined ? "–" : Math.round(confidence * 100) + "%";
}
