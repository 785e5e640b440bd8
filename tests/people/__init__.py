"""Tests of reviews/people: accounts, the people page, membership."""
