"""Finance reports: each a module here with one `compute(params) -> Report` function,
registered in `REPORTS` (finance/reports/registry.py). The console page, its CSV, the API
(`/api/v1/reports/<name>`) and `benchmark reports` all go through the registry, so a
report is written once. The contract is finance/reports/base.py."""
