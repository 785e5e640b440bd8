"""Tests of scoring/: the numeric core, the rescoring jobs, replay."""
