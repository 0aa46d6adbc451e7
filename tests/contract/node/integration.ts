// A few lines a TypeScript integrator writes against the generated types (schema.d.ts is made
// from openapi/openapi.json by openapi-typescript in the test, then this compiles with --strict).
import type { components, paths } from "./schema";

type ScoreAnswers = paths["/v1/subjects/{ref}/score"]["get"]["responses"];
type Score = ScoreAnswers[200]["content"]["application/json"];
type NotFound = ScoreAnswers[404]["content"]["application/problem+json"];
type Invalid = paths["/v1/subjects"]["post"]["responses"][422]["content"]["application/problem+json"];

export function headline(score: Score): string {
  const level = score.attained_level?.name ?? "no level yet";
  return `${level}, level index ${score.level_index.toFixed(2)}, confidence ${score.confidence}`;
}

export function whyNotFound(problem: NotFound): string {
  return `${problem.status} ${problem.title}: ${problem.detail ?? ""}`;
}

export function firstInvalidField(problem: Invalid): string {
  const first = problem.errors?.[0];
  return first ? `${first.loc.join(".")}: ${first.msg}` : problem.title;
}

// Maps keep their values: a subject's team can be set, an expectation read back.
export const ada: components["schemas"]["SubjectCreate"] = {
  external_ref: "ada",
  attributes: { team: "payments" },
};

export function requiredAt(competency: components["schemas"]["Competency"], level: string): number {
  return competency.expectations?.[level]?.required ?? 0;
}
