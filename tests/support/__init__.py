"""Helpers shared by hilt's own tests (servers, run helpers, fixtures, markers). Tests import these, never
another test's module or conftest; instruments that bench/ also uses live in testkit/."""
