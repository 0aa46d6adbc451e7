"""Charts: other representations of the same resources (issue 19).

Contract. A *spec builder* is a pure function ``build(body: dict[str, Any]) -> dict[str, Any]``
taking the decoded JSON body the route answers anyway (``model.model_dump(mode="json")`` or the
JSON bytes decoded) and returning a Vega-Lite v5 specification with the data inlined, a title that
says what is shown and as of when, a one- or two-sentence description for screen readers, a
tile-sized width/height, and the shared config of `app.charts.style`. Building from the JSON body
is what guarantees a chart shows the same numbers as its JSON.

`app.charts.negotiate` picks the representation from ``Accept``; `app.charts.render` turns a
spec into SVG or PNG in-process (vl-convert, no network).
"""
