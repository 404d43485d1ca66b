"""Django's own date output (the console's history pages, date hierarchy and filters, any
`{{ value }}` of a date) in the project's one format, the one core.formatting writes:
'2026-12-03 14:05 UTC', '2026-12-03'. Input formats stay Django's (ISO among them)."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "F j"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday (ISO 8601)
