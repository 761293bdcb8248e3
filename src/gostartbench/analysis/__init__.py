"""The analysis stage (pure): statistics derived from a run's raw samples only — tables in,
tables out. significance.py holds the one significance rule; labels.py the readable labels."""

from gostartbench.analysis.analyse import Analysis, analyse, baselines

__all__ = ["Analysis", "analyse", "baselines"]
