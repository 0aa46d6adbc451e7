#!/usr/bin/env bash
# The README's first score, end to end: a PM assessed by a manager, a peer and themselves.
# Needs a running service (make run) and its development key in var/dev-api-key.
set -euo pipefail
BASE="${BASE:-http://127.0.0.1:8000}"
KEY="${KEY:-$(cat var/dev-api-key)}"
H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")

curl -sf "${H[@]}" -H "Idempotency-Key: ada-subject" "$BASE/v1/subjects" -d '{
  "external_ref": "ada", "display_name": "Ada Byron", "track": "management",
  "current_level": "pm", "attributes": {"team": "payments", "department": "product"}}' >/dev/null

assess() {  # role rater date ratings-json
  curl -sf "${H[@]}" "$BASE/v1/assessments" -H "Idempotency-Key: ada-$1-$3" -d "{
    \"subject_ref\": \"ada\", \"framework\": {\"key\": \"product-management\"},
    \"rater_ref\": \"$2\", \"rater_role\": \"$1\", \"assessed_at\": \"$3T09:00:00Z\",
    \"ratings\": $4}" >/dev/null
}
PM='[{"competency":"customer_discovery","proficiency":3},{"competency":"execution","proficiency":3},
     {"competency":"technical_depth","proficiency":2},{"competency":"prioritization","proficiency":3},
     {"competency":"data_driven_decisions","proficiency":3},{"competency":"stakeholder_management","proficiency":2},
     {"competency":"communication","proficiency":3},{"competency":"cross_functional_leadership","proficiency":2},
     {"competency":"strategic_thinking","proficiency":2},{"competency":"market_analysis","proficiency":2},
     {"competency":"business_acumen","proficiency":2},{"competency":"mentoring_and_coaching","proficiency":2},
     {"competency":"handling_scale","proficiency":2},{"competency":"organization_building","proficiency":1}]'
SELF=$(echo "$PM" | sed 's/"stakeholder_management","proficiency":2/"stakeholder_management","proficiency":4/')
assess manager mgr-17 2026-10-01 "$PM"
assess peer peer-4 2026-10-03 "$PM"
assess self ada 2026-10-05 "$SELF"

curl -sf "${H[@]}" "$BASE/v1/subjects/ada/score?as_of=2026-11-01T00:00:00Z" > /tmp/ada-score.json
curl -sf "${H[@]}" "$BASE/v1/subjects/ada/gaps?as_of=2026-11-01T00:00:00Z" > /tmp/ada-gaps.json
curl -sf "${H[@]}" "$BASE/v1/subjects/ada/recommendations?as_of=2026-11-01T00:00:00Z" > /tmp/ada-plan.json
echo "wrote /tmp/ada-score.json /tmp/ada-gaps.json /tmp/ada-plan.json"
