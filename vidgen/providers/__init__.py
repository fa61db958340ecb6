"""One interface per pipeline step; local providers make real media here, paid ones call the APIs."""
