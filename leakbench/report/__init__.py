"""From findings to what a person reads: report.md, report.html, evidence.json, charts."""
