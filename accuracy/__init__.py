"""leakbench's accuracy corpus: programs with a known answer, and a runner that scores the verdicts."""
