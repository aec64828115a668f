"""The native allocation tracker's Python side: start a target under it (runner), decode its capture
(capture: the one decoder of the format), name its stacks (symbolize). Analysis lives in
leakbench.analysis.native."""
