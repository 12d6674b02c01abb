"""tfgradlint: a linter for TensorFlow gradient bugs."""

__version__ = "0.1.0"
DOCS_URL = "https://github.com/tfgradlint/tfgradlint/blob/main/docs/rules/{code}.md"
