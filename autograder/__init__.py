"""The course's grading pipeline: ``python -m autograder build|grade|autograde|check``."""
