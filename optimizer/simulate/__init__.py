"""Dry-run simulation: replay history through the policies and compare with baselines."""
