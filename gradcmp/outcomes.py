"""How a backend's call ended: its ``status`` in the Report (docs/design.md, "JSON report").

A leaf module: the renderers test statuses without importing the runner that makes them."""

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
