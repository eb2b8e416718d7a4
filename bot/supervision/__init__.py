"""Supervision (issue 25): signs of fake praise and malicious reviews, and random supervisory callbacks."""
