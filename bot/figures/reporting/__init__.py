"""Reporting upward: every evaluation and every later change to it, pushed to the provincial
platforms that the policy's reporting profiles describe (Hainan art. 5, Fujian 十一)."""
