"""The lab bibliography: the shared BibTeX file, its pages and API, and citations in notebooks."""
