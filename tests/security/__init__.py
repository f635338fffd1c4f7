"""`make security` (`python -m tests.security`): the repository's security checks, each with its threshold, one
report with a score (reports/security/), and the fast parts as tests (test_security.py)."""
