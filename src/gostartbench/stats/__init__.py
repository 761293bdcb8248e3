"""The statistics layer: every interval, test and agreement rule in the project, each defined
once (a base layer: any stage may import it; it imports no stage).

- `intervals`: the bootstrap by blocks of time (runs with times), the cross-run ratio, the
  percentile interval of replicates (`ci95`), and the rules an interval is named by (`RULES`);
- `resample`: the bootstrap of runs as independent (runs without times);
- `significance`: the significance rule, Holm, Mann–Whitney U, min_effect, agreement
  tolerances;
- `spread`: calibrate's noise figures.
"""
