#!/usr/bin/env bash
# The README's "Evolving a framework": clone the built-in ladder, rate a small demo team against
# it, draft version 2 (a rename carried by a competency map, a stricter Senior PM), then read the
# diff and the impact preview before publishing. Needs a running service (make run), its
# development key in var/dev-api-key, and python3 (to edit the JSON document).
set -euo pipefail
BASE="${BASE:-http://127.0.0.1:8000}"
KEY="${KEY:-$(cat var/dev-api-key)}"
FW="${FW:-my-pm-ladder}"
H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")

curl -sf "${H[@]}" "$BASE/v1/frameworks/product-management/clone" -d "{\"key\": \"$FW\"}" >/dev/null
curl -sf "${H[@]}" -X POST "$BASE/v1/frameworks/$FW/versions/1/publish" >/dev/null

# The demo team: each person's manager rated every competency at the requirement of their
# official level, shifted by the person's offset (ines: strong, but 3 on stakeholders).
curl -sf "${H[@]}" "$BASE/v1/frameworks/$FW/versions/1" > /tmp/evolve-v1.json
python3 - "$FW" > /tmp/evolve-team.json <<'PY'
import json, sys
doc = json.load(open("/tmp/evolve-v1.json"))["document"]
team = {"amir": ("pm", 0), "bea": ("pm", 1), "chen": ("senior_pm", 0), "dara": ("senior_pm", 1),
        "eli": ("apm", 1), "fay": ("pm", -1), "gus": ("senior_pm", -1), "ines": ("senior_pm", 1)}
subjects, assessments = [], []
for ref, (level, shift) in team.items():
    subjects.append({"external_ref": ref, "current_level": level, "attributes": {"team": "core"}})
    values = {c["key"]: max(0, min(5, c["expectations"].get(level, {"required": 0})["required"]
                                   + shift)) for c in doc["competencies"]}
    if ref == "ines":
        values["stakeholder_management"] = 3
    assessments.append({"subject_ref": ref, "framework": {"key": sys.argv[1], "version": 1},
                        "rater_ref": "mgr-1", "rater_role": "manager",
                        "assessed_at": "2026-10-01T09:00:00Z",
                        "ratings": [{"competency": k, "proficiency": v} for k, v in values.items()]})
print(json.dumps({"subjects": subjects, "assessments": assessments}))
PY
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["subjects"]))' \
  /tmp/evolve-team.json | curl -s "${H[@]}" "$BASE/v1/subjects/bulk" -d @- >/dev/null  # 422 on a rerun: they exist
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["assessments"]))' \
  /tmp/evolve-team.json | curl -sf "${H[@]}" "$BASE/v1/assessments/bulk" -d @- >/dev/null

# Version 2: a copy of version 1, then edited and saved with If-Match.
curl -sf "${H[@]}" -X POST "$BASE/v1/frameworks/$FW/versions" -D /tmp/evolve-headers \
  | python3 -c '
import json, sys
doc = json.load(sys.stdin)["document"]
for comp in doc["competencies"]:
    if comp["key"] == "execution":
        comp["key"], comp["name"] = "delivery", "Delivery"
    if comp["key"] == "stakeholder_management":
        comp["expectations"]["senior_pm"].update(required=4, critical=True)
for activity in doc["activities"]:
    if "execution" in activity["develops"]:
        activity["develops"]["delivery"] = activity["develops"].pop("execution")
doc["competency_map"] = {"entries": [{"from": "execution", "to": "delivery"}]}
doc["release_notes"] = "Execution is now Delivery. Senior PMs lead stakeholders at 4."
print(json.dumps(doc))' > /tmp/evolve-v2.json
ETAG=$(grep -i '^etag:' /tmp/evolve-headers | cut -d' ' -f2 | tr -d '\r')
curl -sf "${H[@]}" -X PUT -H "If-Match: $ETAG" "$BASE/v1/frameworks/$FW/versions/2" \
  -d @/tmp/evolve-v2.json >/dev/null

curl -sf "${H[@]}" "$BASE/v1/frameworks/$FW/diff?from=1&to=2" > /tmp/evolve-diff.json
python3 -c 'import json; print(json.load(open("/tmp/evolve-diff.json"))["summary"])'
echo
curl -sf "${H[@]}" "$BASE/v1/frameworks/$FW/versions/2/impact" -d '{"as_of": "2026-11-01T00:00:00Z"}' \
  > /tmp/evolve-impact.json
curl -sf "${H[@]}" "$BASE/v1/frameworks/$FW/versions/2/impact?format=csv" \
  -d '{"as_of": "2026-11-01T00:00:00Z"}'
echo "wrote /tmp/evolve-diff.json /tmp/evolve-impact.json"
