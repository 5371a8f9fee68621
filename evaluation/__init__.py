"""Evaluation harness: gold sets, SQuAD conversion, metrics, the runner and its reports."""
